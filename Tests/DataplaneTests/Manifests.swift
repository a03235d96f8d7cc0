/// A pod of the test topology: its addresses, node and zone.
struct Pod: Sendable, Hashable, CustomStringConvertible {
  var name: String
  var ipv4: String
  var ipv6: String
  var nodeName: String
  var zone: String

  var description: String { name }

  func ip(_ family: Family) -> String { family == .ipv4 ? ipv4 : ipv6 }
}

enum Family: Sendable {
  case ipv4, ipv6
  static func of(_ ip: String) -> Family { ip.contains(":") ? .ipv6 : .ipv4 }
  var manifestName: String { self == .ipv4 ? "IPv4" : "IPv6" }
}

/// One endpoint of a service and its conditions.
struct Endpoint: Sendable {
  var pod: Pod
  var ready = true
  var serving = true
  var terminating = false
  /// Zones named in the endpoint's `hints.forZones`.
  var zoneHints: [String] = []

  static func terminating(_ pod: Pod, serving: Bool = true) -> Endpoint {
    Endpoint(pod: pod, ready: false, serving: serving, terminating: true)
  }
}

struct ServicePort: Sendable {
  var l4: L4 = .tcp
  var port: UInt16
  var nodePort: UInt16? = nil

  var name: String { "\(l4.rawValue)-\(port)" }
}

/// A Service and its EndpointSlices, written out as manifests.
struct ServiceSpec: Sendable {
  var name: String
  var type = "ClusterIP"
  var clusterIPs: [String]
  var ports: [ServicePort]
  var externalTrafficPolicy: String? = nil
  var internalTrafficPolicy: String? = nil
  var clientIPAffinity = false
  var loadBalancerIPs: [String] = []
  var externalIPs: [String] = []
  var sourceRanges: [String] = []
  var topologyAuto = false
  var endpoints: [Endpoint] = []

  var families: [Family] { clusterIPs.map(Family.of) }
}

/// Every pod serves on this port (TCP, UDP and, where the kernel has it, SCTP).
let targetPort: UInt16 = 8080

enum Manifest {
  /// The Node object for node-a (zone-a, both pod CIDRs and node IPs), then every service.
  static func yaml(_ services: [ServiceSpec]) -> String {
    var out = """
      apiVersion: v1
      kind: Node
      metadata:
        name: node-a
        labels:
          kubernetes.io/hostname: node-a
          topology.kubernetes.io/zone: zone-a
      spec:
        podCIDR: 10.244.1.0/24
        podCIDRs: ["10.244.1.0/24", "fd00:10:244:1::/64"]
      status:
        addresses:
        - {type: InternalIP, address: "\(Topology.nodeIPv4)"}
        - {type: InternalIP, address: "\(Topology.nodeIPv6)"}

      """
    for s in services { out += service(s) + slices(s) }
    return out
  }

  private static func list(_ items: [String]) -> String {
    "[" + items.map { "\"\($0)\"" }.joined(separator: ", ") + "]"
  }

  private static func service(_ s: ServiceSpec) -> String {
    var out = """
      ---
      apiVersion: v1
      kind: Service
      metadata:
        name: \(s.name)
        namespace: default

      """
    if s.topologyAuto {
      out += "  annotations:\n    service.kubernetes.io/topology-mode: Auto\n"
    }
    out += """
      spec:
        type: \(s.type)
        clusterIP: "\(s.clusterIPs[0])"
        clusterIPs: \(list(s.clusterIPs))
        ipFamilies: [\(s.families.map(\.manifestName).joined(separator: ", "))]
        ipFamilyPolicy: \(s.clusterIPs.count > 1 ? "RequireDualStack" : "SingleStack")
        selector: {app: \(s.name)}

      """
    if let p = s.externalTrafficPolicy { out += "  externalTrafficPolicy: \(p)\n" }
    if let p = s.internalTrafficPolicy { out += "  internalTrafficPolicy: \(p)\n" }
    if s.clientIPAffinity {
      out +=
        "  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 600}}\n"
    }
    if !s.externalIPs.isEmpty { out += "  externalIPs: \(list(s.externalIPs))\n" }
    if !s.sourceRanges.isEmpty { out += "  loadBalancerSourceRanges: \(list(s.sourceRanges))\n" }
    out += "  ports:\n"
    for p in s.ports {
      out +=
        "  - {name: \(p.name), protocol: \(p.l4.manifestName), port: \(p.port), targetPort: \(targetPort)"
      if let np = p.nodePort { out += ", nodePort: \(np)" }
      out += "}\n"
    }
    if !s.loadBalancerIPs.isEmpty {
      out += "status:\n  loadBalancer:\n    ingress:\n"
      for ip in s.loadBalancerIPs { out += "    - {ip: \"\(ip)\", ipMode: VIP}\n" }
    }
    return out
  }

  private static func slices(_ s: ServiceSpec) -> String {
    var out = ""
    for family in s.families {
      out += """
        ---
        apiVersion: discovery.k8s.io/v1
        kind: EndpointSlice
        metadata:
          name: \(s.name)-\(family.manifestName.lowercased())
          namespace: default
          labels:
            kubernetes.io/service-name: \(s.name)
            endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io
        addressType: \(family.manifestName)
        ports:

        """
      for p in s.ports {
        out += "- {name: \(p.name), protocol: \(p.l4.manifestName), port: \(targetPort)}\n"
      }
      if s.endpoints.isEmpty { out += "endpoints: []\n" } else { out += "endpoints:\n" }
      for e in s.endpoints {
        out += """
          - addresses: ["\(e.pod.ip(family))"]
            conditions: {ready: \(e.ready), serving: \(e.serving), terminating: \(e.terminating)}
            nodeName: \(e.pod.nodeName)
            zone: \(e.pod.zone)

          """
        if !e.zoneHints.isEmpty {
          out += "  hints:\n    forZones:\n"
          for z in e.zoneHints { out += "    - name: \(z)\n" }
        }
      }
    }
    return out
  }
}
