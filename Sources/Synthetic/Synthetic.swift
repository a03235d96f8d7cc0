import IPAddr
import KubeModel

/// Generates a deterministic synthetic cluster for benchmarks: `services` Services with
/// `endpointsPerService` ready endpoints each, spread over `nodes` nodes.
public struct SyntheticCluster: Sendable {
  public var services: Int
  public var endpointsPerService: Int
  public var nodes: Int = 100
  /// Every `nodePortEvery`-th service is a NodePort (0: none).
  public var nodePortEvery: Int = 10
  /// Every `loadBalancerEvery`-th service is a LoadBalancer with an ingress IP (0: none).
  public var loadBalancerEvery: Int = 20
  /// Every `localPolicyEvery`-th externally reachable service has externalTrafficPolicy Local.
  public var localPolicyEvery: Int = 2
  /// Every `affinityEvery`-th service has ClientIP affinity (0: none).
  public var affinityEvery: Int = 0
  public var dualStack: Bool = false

  public static let nodeName = "node-0"
  public static let clusterCIDRs = ["10.64.0.0/10", "fd00:10:64::/48"]
  public static let serviceCIDRs = ["10.0.0.0/12", "fd00:10:96::/108"]
  public static let nodeIPs = ["192.168.0.10", "fd00:192:168::10"]

  public init(services: Int, endpointsPerService: Int) {
    self.services = services
    self.endpointsPerService = endpointsPerService
  }

  public func generate() -> ClusterState {
    var state = ClusterState()
    state.services.reserveCapacity(services)
    state.endpointSlices.reserveCapacity(services * (dualStack ? 2 : 1))
    state.nodes = [
      Node(
        metadata: ObjectMeta(name: Self.nodeName, labels: [Node.zoneLabel: "zone-a"]),
        spec: NodeSpec(podCIDR: "10.64.0.0/24", podCIDRs: dualStack ? ["10.64.0.0/24", "fd00:10:64::/64"] : ["10.64.0.0/24"]),
        status: NodeStatus(
          addresses: [NodeAddress(type: "InternalIP", address: Self.nodeIPs[0])]
            + (dualStack ? [NodeAddress(type: "InternalIP", address: Self.nodeIPs[1])] : [])))
    ]
    var endpointCounter = 0
    // NodePorts are unique per cluster (30000-32767); once used up, services get none.
    var nextNodePort = 30000
    for i in 0..<services {
      let name = "svc-\(i)"
      let ns = "ns-\(i % 50)"
      let v4 = IPAddress.v4(0x0A00_0000 + UInt32(i + 1))
      let v6 = IPAddress.v6(0xfd00_0010_0096_0000, UInt64(i + 1))
      var type = "ClusterIP"
      var nodePort: Int? = nil
      var status: ServiceStatus? = nil
      if loadBalancerEvery > 0 && i % loadBalancerEvery == 1 {
        type = "LoadBalancer"
        let lb = IPAddress.v4(0xCB00_0000 + UInt32(i + 1))  // 203.0.0.0/8 range, synthetic
        status = ServiceStatus(loadBalancer: LoadBalancerStatus(ingress: [LoadBalancerIngress(ip: lb.description)]))
      } else if nodePortEvery > 0 && i % nodePortEvery == 0 && nextNodePort <= 32767 {
        type = "NodePort"
      }
      if type != "ClusterIP" && nextNodePort <= 32767 {
        nodePort = nextNodePort
        nextNodePort += 1
      }
      let external = type != "ClusterIP"
      let eLocal = external && localPolicyEvery > 0 && (i / 2) % localPolicyEvery == 0
      var spec = ServiceSpec(
        type: type, clusterIP: v4.description,
        clusterIPs: dualStack ? [v4.description, v6.description] : [v4.description],
        ipFamilies: dualStack ? ["IPv4", "IPv6"] : ["IPv4"],
        ports: [ServicePort(name: "http", protocol: "TCP", port: 80, targetPort: .int(8080), nodePort: nodePort)],
        externalTrafficPolicy: external ? (eLocal ? "Local" : "Cluster") : nil)
      if affinityEvery > 0 && i % affinityEvery == 0 {
        spec.sessionAffinity = "ClientIP"
        spec.sessionAffinityConfig = SessionAffinityConfig(clientIP: ClientIPConfig(timeoutSeconds: 10800))
      }
      state.services.append(
        Service(metadata: ObjectMeta(name: name, namespace: ns), spec: spec, status: status))
      var v4eps: [Endpoint] = []
      var v6eps: [Endpoint] = []
      for _ in 0..<endpointsPerService {
        endpointCounter += 1
        let node = "node-\(endpointCounter % nodes)"
        v4eps.append(
          Endpoint(
            addresses: [IPAddress.v4(0x0A40_0000 + UInt32(endpointCounter)).description],
            conditions: EndpointConditions(ready: true, serving: true, terminating: false), nodeName: node))
        if dualStack {
          v6eps.append(
            Endpoint(
              addresses: [IPAddress.v6(0xfd00_0010_0064_0000, UInt64(endpointCounter)).description],
              conditions: EndpointConditions(ready: true, serving: true, terminating: false), nodeName: node))
        }
      }
      let labels = [EndpointSlice.serviceNameLabel: name]
      state.endpointSlices.append(
        EndpointSlice(
          metadata: ObjectMeta(name: "\(name)-v4", namespace: ns, labels: labels), addressType: "IPv4",
          endpoints: v4eps, ports: [EndpointPort(name: "http", protocol: "TCP", port: 8080)]))
      if dualStack {
        state.endpointSlices.append(
          EndpointSlice(
            metadata: ObjectMeta(name: "\(name)-v6", namespace: ns, labels: labels), addressType: "IPv6",
            endpoints: v6eps, ports: [EndpointPort(name: "http", protocol: "TCP", port: 8080)]))
      }
    }
    return state
  }
}

#if canImport(FoundationEssentials)
  import FoundationEssentials
#else
  import Foundation
#endif

extension ClusterState {
  /// The state as one `v1/List` JSON document, as `kubectl get -o json` would print it.
  public func listJSON() -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    var items: [String] = []
    items.reserveCapacity(nodes.count + services.count + endpointSlices.count)
    func add<T: Encodable>(_ value: T) {
      if let data = try? encoder.encode(value) { items.append(String(decoding: data, as: UTF8.self)) }
    }
    nodes.forEach(add)
    services.forEach(add)
    endpointSlices.forEach(add)
    return "{\"apiVersion\":\"v1\",\"kind\":\"List\",\"items\":[\n" + items.joined(separator: ",\n") + "\n]}\n"
  }
}
