import KubeModel

/// The node the daemon runs for (`--hostname-override node-a`).
func nodeA() -> Node {
  Node(
    metadata: ObjectMeta(
      name: "node-a",
      labels: ["kubernetes.io/hostname": "node-a", "topology.kubernetes.io/zone": "zone-a"]),
    spec: NodeSpec(podCIDR: "10.244.1.0/24", podCIDRs: ["10.244.1.0/24"]),
    status: NodeStatus(addresses: [NodeAddress(type: "InternalIP", address: "192.168.10.11")]))
}

/// A ClusterIP Service with one TCP port named `http` (80 → 8080).
func clusterIPService(_ name: String, clusterIP: String, namespace: String = "default")
  -> Service
{
  Service(
    metadata: ObjectMeta(name: name, namespace: namespace),
    spec: ServiceSpec(
      type: "ClusterIP", clusterIP: clusterIP, clusterIPs: [clusterIP], ipFamilies: ["IPv4"],
      ports: [ServicePort(name: "http", protocol: "TCP", port: 80, targetPort: .int(8080))]))
}

/// A LoadBalancer Service with `externalTrafficPolicy: Local` and a health-check node port.
func localLoadBalancer(
  _ name: String, clusterIP: String, ingressIP: String, nodePort: Int, healthCheckNodePort: Int
) -> Service {
  Service(
    metadata: ObjectMeta(name: name, namespace: "default"),
    spec: ServiceSpec(
      type: "LoadBalancer", clusterIP: clusterIP, clusterIPs: [clusterIP], ipFamilies: ["IPv4"],
      ports: [
        ServicePort(
          name: "http", protocol: "TCP", port: 80, targetPort: .int(8080), nodePort: nodePort)
      ],
      externalTrafficPolicy: "Local", healthCheckNodePort: healthCheckNodePort),
    status: ServiceStatus(
      loadBalancer: LoadBalancerStatus(ingress: [LoadBalancerIngress(ip: ingressIP)])))
}

/// An IPv4 EndpointSlice for the Service `service`, port `http` 8080/TCP, one ready endpoint
/// per (address, node).
func endpointSlice(
  _ name: String, service: String, endpoints: [(address: String, node: String)],
  namespace: String = "default"
) -> EndpointSlice {
  EndpointSlice(
    metadata: ObjectMeta(
      name: name, namespace: namespace, labels: [EndpointSlice.serviceNameLabel: service]),
    addressType: "IPv4",
    endpoints: endpoints.map {
      Endpoint(
        addresses: [$0.address],
        conditions: EndpointConditions(ready: true, serving: true, terminating: false),
        nodeName: $0.node)
    },
    ports: [EndpointPort(name: "http", protocol: "TCP", port: 8080)])
}

/// The endpoint chain nftproxy names for `namespace/name` port `http`/TCP.
func serviceChain(_ name: String, namespace: String = "default") -> String {
  "service-\(namespace)/\(name)/tcp/http"
}
