import IPAddr
import KubeModel
import NFTables

/// One endpoint (address and port) of a service port, with the conditions the resolver read.
public struct ResolvedEndpoint: Sendable, Hashable, Comparable {
  public var address: IPAddress
  public var port: UInt16
  public var nodeName: String?
  public var isLocal: Bool
  public var ready: Bool
  public var serving: Bool
  public var terminating: Bool

  public init(
    address: IPAddress, port: UInt16, nodeName: String? = nil, isLocal: Bool = false,
    ready: Bool = true, serving: Bool = true, terminating: Bool = false
  ) {
    self.address = address
    self.port = port
    self.nodeName = nodeName
    self.isLocal = isLocal
    self.ready = ready
    self.serving = serving
    self.terminating = terminating
  }

  public static func < (a: ResolvedEndpoint, b: ResolvedEndpoint) -> Bool {
    (a.address, a.port) < (b.address, b.port)
  }
}

/// What this node must do for one port of one Service in one IP family.
public struct ResolvedServicePort: Sendable, Equatable {
  public var namespace: String
  public var name: String
  /// The Service port's name, or "" when unnamed.
  public var portName: String
  public var proto: L4Proto
  public var family: IPAddress.Family
  public var clusterIP: IPAddress
  public var port: UInt16
  public var nodePort: UInt16?
  public var externalIPs: [IPAddress]
  public var loadBalancerIPs: [IPAddress]
  /// `loadBalancerSourceRanges` of this family; empty means no firewall.
  public var sourceRanges: [CIDR]
  public var externalPolicyLocal: Bool
  public var internalPolicyLocal: Bool
  /// ClientIP session affinity timeout in seconds, or nil without affinity.
  public var affinityTimeout: Int?
  /// Endpoints for traffic under the Cluster policy (after topology and terminating fallback).
  public var clusterEndpoints: [ResolvedEndpoint]
  /// Endpoints on this node for traffic under the Local policy.
  public var localEndpoints: [ResolvedEndpoint]
  /// Whether any usable endpoint exists anywhere (otherwise traffic is rejected).
  public var hasAnyEndpoints: Bool
  /// "PreferSameNode", "PreferSameZone" or nil: how topology hints narrowed `clusterEndpoints`.
  public var topologyMode: String?
  /// UDP only (empty otherwise): every ready or serving endpoint (terminating ones included) on
  /// any node, before policy and topology filtering. Conntrack cleanup keeps flows to these.
  public var servingEndpoints: [ResolvedEndpoint] = []

  /// `namespace/name/protocol/port-name-or-number`: the stable name of this service port.
  public var id: String {
    "\(namespace)/\(name)/\(proto.rawValue)/\(portName.isEmpty ? String(port) : portName)"
  }

  public var serviceKey: String { "\(namespace)/\(name)" }

  /// Reached from outside the cluster (NodePort, externalIPs or load-balancer IPs).
  public var externallyAccessible: Bool {
    nodePort != nil || !externalIPs.isEmpty || !loadBalancerIPs.isEmpty
  }

  /// Local external policy only matters for services reachable from outside.
  public var effectiveExternalPolicyLocal: Bool { externallyAccessible && externalPolicyLocal }

  public var usesClusterEndpoints: Bool {
    !internalPolicyLocal || (externallyAccessible && !externalPolicyLocal)
  }

  public var usesLocalEndpoints: Bool {
    internalPolicyLocal || effectiveExternalPolicyLocal
  }
}

/// A Service that gets no rules, and why.
public struct SkippedService: Sendable, Equatable {
  public var key: String
  public var reason: String
  public init(key: String, reason: String) {
    self.key = key
    self.reason = reason
  }
}

/// This node as the resolver sees it.
public struct NodeView: Sendable, Equatable {
  public var name: String
  /// Node IPs, the primary (first) of each family first.
  public var ips: [IPAddress]
  public var zone: String?
  public var podCIDRs: [CIDR]

  public func primaryIP(_ family: IPAddress.Family) -> IPAddress? {
    ips.first { $0.family == family }
  }
}

/// The resolver's result for the whole cluster.
public struct ResolvedCluster: Sendable, Equatable {
  public var node: NodeView
  /// Sorted by `id`, then family.
  public var servicePorts: [ResolvedServicePort]
  public var skipped: [SkippedService]
  public var warnings: [String]
}

/// Computes, for this node, every service port's frontends and endpoint sets
/// (kube-proxy's service and endpoint change trackers plus `CategorizeEndpoints`).
public enum Resolver {
  public static let serviceProxyNameLabel = "service.kubernetes.io/service-proxy-name"
  public static let headlessLabel = "service.kubernetes.io/headless"

  public static func resolve(_ state: ClusterState, config: ProxyConfig) -> ResolvedCluster {
    var warnings: [String] = []
    let node = nodeView(state, config: config, warnings: &warnings)

    // Slices by service key, in name order so duplicates resolve deterministically.
    var slicesByService: [String: [EndpointSlice]] = [:]
    for slice in state.endpointSlices {
      guard let key = slice.serviceKey else { continue }
      slicesByService[key, default: []].append(slice)
    }

    var ports: [ResolvedServicePort] = []
    var skipped: [SkippedService] = []
    for svc in state.services {
      if let reason = skipReason(svc) {
        skipped.append(SkippedService(key: svc.key, reason: reason))
        continue
      }
      let slices = (slicesByService[svc.key] ?? []).sorted {
        ($0.metadata.name ?? "") < ($1.metadata.name ?? "")
      }
      ports += resolve(service: svc, slices: slices, node: node)
    }
    ports = zip(ports.map(\.id), ports).sorted { a, b in
      a.0 != b.0 ? a.0 < b.0 : a.1.family < b.1.family
    }.map(\.1)
    skipped.sort { $0.key < $1.key }
    return ResolvedCluster(node: node, servicePorts: ports, skipped: skipped, warnings: warnings)
  }

  /// The reason a Service gets no dataplane rules, or nil when it gets rules.
  public static func skipReason(_ svc: Service) -> String? {
    if let v = svc.metadata.labels?[serviceProxyNameLabel] {
      return "labelled \(serviceProxyNameLabel)=\(v): handled by another proxy"
    }
    if svc.metadata.labels?[headlessLabel] != nil {
      return "labelled \(headlessLabel)"
    }
    if svc.spec.type == "ExternalName" {
      return "type ExternalName: answered by DNS only"
    }
    let ips = clusterIPStrings(svc)
    if ips.contains("None") { return "headless (clusterIP: None)" }
    if ips.isEmpty { return "no clusterIP allocated" }
    if (svc.spec.ports ?? []).isEmpty { return "no ports" }
    return nil
  }

  static func clusterIPStrings(_ svc: Service) -> [String] {
    if let ips = svc.spec.clusterIPs, !ips.isEmpty { return ips.filter { !$0.isEmpty } }
    if let ip = svc.spec.clusterIP, !ip.isEmpty { return [ip] }
    return []
  }

  static func nodeView(_ state: ClusterState, config: ProxyConfig, warnings: inout [String])
    -> NodeView
  {
    let node = state.nodes.first { $0.metadata.name == config.hostname }
    if node == nil && !config.hostname.isEmpty && !state.nodes.isEmpty {
      warnings.append("no Node named \(config.hostname) in the input; node IPs come from flags only")
    }
    var ips = config.nodeIPs
    if ips.isEmpty, let addrs = node?.status?.addresses {
      for type in ["InternalIP", "ExternalIP"] {
        for a in addrs where a.type == type {
          if let ip = IPAddress(a.address), !ips.contains(ip) { ips.append(ip) }
        }
      }
    }
    var cidrs: [CIDR] = []
    for text in node?.spec?.podCIDRs ?? (node?.spec?.podCIDR.map { [$0] } ?? []) {
      if let c = CIDR(text) { cidrs.append(c) }
    }
    return NodeView(
      name: config.hostname, ips: ips, zone: node?.metadata.labels?[Node.zoneLabel],
      podCIDRs: cidrs)
  }

  static func proto(_ text: String?) -> L4Proto? {
    switch (text ?? "TCP").uppercased() {
    case "TCP": return .tcp
    case "UDP": return .udp
    case "SCTP": return .sctp
    default: return nil
    }
  }

  static func resolve(service svc: Service, slices: [EndpointSlice], node: NodeView)
    -> [ResolvedServicePort]
  {
    let spec = svc.spec
    let type = spec.type ?? "ClusterIP"
    let clusterIPs = clusterIPStrings(svc).compactMap { IPAddress($0) }
    let externalIPs = (spec.externalIPs ?? []).compactMap { IPAddress($0) }
    var lbIPs: [IPAddress] = []
    if type == "LoadBalancer" {
      for ing in svc.status?.loadBalancer?.ingress ?? [] where ing.ipMode != "Proxy" {
        if let text = ing.ip, let ip = IPAddress(text), !lbIPs.contains(ip) { lbIPs.append(ip) }
      }
    }
    let ranges = (spec.loadBalancerSourceRanges ?? []).compactMap {
      CIDR($0.trimmingSpaces)
    }
    let eLocal = spec.externalTrafficPolicy == "Local"
    let iLocal = spec.internalTrafficPolicy == "Local"
    let affinity: Int? =
      spec.sessionAffinity == "ClientIP"
      ? (spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? 10800) : nil

    var out: [ResolvedServicePort] = []
    for clusterIP in clusterIPs {
      let family = clusterIP.family
      let familySlices = slices.filter { $0.addressType == family.rawValue }
      for sp in spec.ports ?? [] {
        guard let proto = proto(sp.protocol), (1...65535).contains(sp.port) else { continue }
        var nodePort: UInt16? = nil
        if type == "NodePort" || type == "LoadBalancer", let np = sp.nodePort, (1...65535).contains(np) {
          nodePort = UInt16(np)
        }
        let endpoints = collectEndpoints(
          slices: familySlices, portName: sp.name ?? "", proto: proto, node: node)
        var rsp = ResolvedServicePort(
          namespace: svc.metadata.namespace ?? "default", name: svc.metadata.name ?? "",
          portName: sp.name ?? "", proto: proto, family: family, clusterIP: clusterIP,
          port: UInt16(sp.port), nodePort: nodePort,
          externalIPs: externalIPs.filter { $0.family == family },
          loadBalancerIPs: lbIPs.filter { $0.family == family },
          sourceRanges: ranges.filter { $0.family == family },
          externalPolicyLocal: eLocal, internalPolicyLocal: iLocal, affinityTimeout: affinity,
          clusterEndpoints: [], localEndpoints: [], hasAnyEndpoints: false, topologyMode: nil)
        categorize(&rsp, endpoints: endpoints, node: node, slices: familySlices)
        if proto == .udp {
          rsp.servingEndpoints = endpoints.map(\.0).filter { $0.ready || $0.serving }
        }
        out.append(rsp)
      }
    }
    return out
  }

  /// Endpoints of one service port across the slices of one family: the slice port with the
  /// same name and protocol gives the port number, so a named `targetPort` resolves per slice.
  static func collectEndpoints(
    slices: [EndpointSlice], portName: String, proto: L4Proto, node: NodeView
  ) -> [(ResolvedEndpoint, hints: Hints)] {
    var seen = Set<ResolvedEndpoint.Key>()
    var out: [(ResolvedEndpoint, hints: Hints)] = []
    for slice in slices {
      guard
        let ep = (slice.ports ?? []).first(where: {
          ($0.name ?? "") == portName && Resolver.proto($0.protocol) == proto
        }), let number = ep.port, (1...65535).contains(number)
      else { continue }
      for e in slice.endpoints ?? [] {
        guard let first = e.addresses.first, let addr = IPAddress(first) else { continue }
        let key = ResolvedEndpoint.Key(address: addr, port: UInt16(number))
        if !seen.insert(key).inserted { continue }
        let ready = e.conditions?.ready ?? true
        let serving = e.conditions?.serving ?? true
        let terminating = e.conditions?.terminating ?? false
        let r = ResolvedEndpoint(
          address: addr, port: UInt16(number), nodeName: e.nodeName,
          isLocal: !node.name.isEmpty && e.nodeName == node.name, ready: ready,
          serving: serving, terminating: terminating)
        let hints = Hints(
          zones: Set((e.hints?.forZones ?? []).map(\.name)),
          nodes: Set((e.hints?.forNodes ?? []).map(\.name)))
        out.append((r, hints))
      }
    }
    out.sort { $0.0 < $1.0 }
    return out
  }

  struct Hints {
    var zones: Set<String>
    var nodes: Set<String>
  }

  /// kube-proxy's `CategorizeEndpoints`: which endpoints serve Cluster-policy and
  /// Local-policy traffic, with topology filtering and the terminating fallback.
  static func categorize(
    _ rsp: inout ResolvedServicePort, endpoints: [(ResolvedEndpoint, hints: Hints)],
    node: NodeView, slices: [EndpointSlice]
  ) {
    var hasAny = false
    if rsp.usesClusterEndpoints {
      let mode = topologyMode(endpoints, node: node)
      rsp.topologyMode = mode
      var cluster = endpoints.filter { ep, hints in
        guard ep.ready else { return false }
        switch mode {
        case "PreferSameNode": return hints.nodes.contains(node.name)
        case "PreferSameZone": return node.zone.map { hints.zones.contains($0) } ?? false
        default: return true
        }
      }.map(\.0)
      if cluster.isEmpty {
        cluster = endpoints.map(\.0).filter { $0.serving && $0.terminating }
      }
      rsp.clusterEndpoints = cluster
      hasAny = !cluster.isEmpty
    }
    if rsp.usesLocalEndpoints {
      var localReady = false
      var localTerminating = false
      for (ep, _) in endpoints {
        if ep.ready {
          hasAny = true
          if ep.isLocal { localReady = true }
        } else if ep.serving && ep.terminating {
          hasAny = true
          if ep.isLocal { localTerminating = true }
        }
      }
      if localReady {
        rsp.localEndpoints = endpoints.map(\.0).filter { $0.isLocal && $0.ready }
      } else if localTerminating {
        rsp.localEndpoints = endpoints.map(\.0).filter {
          $0.isLocal && $0.serving && $0.terminating
        }
      }
    }
    rsp.hasAnyEndpoints = hasAny
  }

  /// Topology hints apply only when every ready endpoint carries them and one names this
  /// node (node hints) or this node's zone (zone hints).
  static func topologyMode(_ endpoints: [(ResolvedEndpoint, hints: Hints)], node: NodeView)
    -> String?
  {
    var allNode = true
    var forNode = false
    var allZone = true
    var forZone = false
    var anyReady = false
    for (ep, hints) in endpoints where ep.ready {
      anyReady = true
      if hints.nodes.isEmpty {
        allNode = false
      } else if hints.nodes.contains(node.name) {
        forNode = true
      }
      if hints.zones.isEmpty {
        allZone = false
      } else if let z = node.zone, hints.zones.contains(z) {
        forZone = true
      }
    }
    guard anyReady else { return nil }
    if allNode && forNode { return "PreferSameNode" }
    if allZone && forZone { return "PreferSameZone" }
    return nil
  }
}

extension ResolvedEndpoint {
  struct Key: Hashable {
    var address: IPAddress
    var port: UInt16
  }
}

extension String {
  var trimmingSpaces: String {
    var s = Substring(self)
    while s.first == " " || s.first == "\t" { s.removeFirst() }
    while s.last == " " || s.last == "\t" { s.removeLast() }
    return String(s)
  }
}
