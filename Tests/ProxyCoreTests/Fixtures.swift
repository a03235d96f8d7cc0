import IPAddr
import KubeModel
import NFTables
import ProxyCore

/// Small builders for Services and EndpointSlices in resolver tests.
enum Fx {
  static let node = "node-a"

  static func config(_ extra: (inout ProxyConfig) -> Void = { _ in }) -> ProxyConfig {
    var c = ProxyConfig(
      hostname: node, nodeIPs: [IPAddress("192.168.10.11")!],
      clusterCIDRs: [CIDR("10.244.0.0/16")!], serviceCIDRs: [CIDR("10.96.0.0/16")!])
    extra(&c)
    return c
  }

  static func service(
    _ name: String, type: String = "ClusterIP", clusterIP: String = "10.96.0.10",
    ports: [ServicePort] = [ServicePort(name: "http", protocol: "TCP", port: 80, targetPort: .int(8080), nodePort: 30080)],
    eTP: String? = nil, iTP: String? = nil, annotations: [String: String]? = nil,
    labels: [String: String]? = nil, edit: (inout Service) -> Void = { _ in }
  ) -> Service {
    var s = Service(
      metadata: ObjectMeta(name: name, namespace: "default", labels: labels, annotations: annotations),
      spec: ServiceSpec(
        type: type, clusterIP: clusterIP, clusterIPs: [clusterIP], ports: ports,
        externalTrafficPolicy: eTP, internalTrafficPolicy: iTP))
    edit(&s)
    return s
  }

  struct EP {
    var ip: String
    var node: String? = "node-b"
    var ready: Bool? = true
    var serving: Bool? = nil
    var terminating: Bool? = nil
    var zones: [String]? = nil
    var nodeHints: [String]? = nil
  }

  static func slice(
    _ service: String, name: String? = nil, family: String = "IPv4", portName: String = "http",
    port: Int = 8080, _ eps: [EP]
  ) -> EndpointSlice {
    EndpointSlice(
      metadata: ObjectMeta(
        name: name ?? "\(service)-abc", namespace: "default",
        labels: [EndpointSlice.serviceNameLabel: service]),
      addressType: family,
      endpoints: eps.map { e in
        Endpoint(
          addresses: [e.ip],
          conditions: EndpointConditions(ready: e.ready, serving: e.serving, terminating: e.terminating),
          nodeName: e.node,
          hints: (e.zones == nil && e.nodeHints == nil)
            ? nil
            : EndpointHints(
              forZones: e.zones?.map { ForZone(name: $0) }, forNodes: e.nodeHints?.map { ForNode(name: $0) }))
      },
      ports: [EndpointPort(name: portName, protocol: "TCP", port: port)])
  }

  static func nodeObject(zone: String? = "zone-a") -> Node {
    Node(
      metadata: ObjectMeta(name: node, labels: zone.map { [Node.zoneLabel: $0] }),
      spec: NodeSpec(podCIDR: "10.244.1.0/24", podCIDRs: ["10.244.1.0/24"]),
      status: NodeStatus(addresses: [NodeAddress(type: "InternalIP", address: "192.168.10.11")]))
  }

  static func resolve(
    _ services: [Service], _ slices: [EndpointSlice], config: ProxyConfig = Fx.config(),
    node: Node? = Fx.nodeObject()
  ) -> ResolvedCluster {
    Resolver.resolve(
      ClusterState(services: services, endpointSlices: slices, nodes: node.map { [$0] } ?? []),
      config: config)
  }

  static func ips(_ eps: [ResolvedEndpoint]) -> [String] {
    eps.map(\.address.description)
  }
}
