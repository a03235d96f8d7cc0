import IPAddr

/// Which UDP conntrack entries a sync left stale: entries sent to a service frontend whose reply
/// comes from an address that is not a serving endpoint of that frontend.
///
/// UDP has no connection end, so without cleanup a client that keeps its source port (DNS
/// resolvers do) stays on a removed endpoint for as long as it keeps sending.
public struct StaleUDPFilter: Sendable, Equatable {
  /// An address and a port.
  public struct HostPort: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var address: IPAddress
    public var port: UInt16

    public init(_ address: IPAddress, _ port: UInt16) {
      self.address = address
      self.port = port
    }

    public static func < (a: HostPort, b: HostPort) -> Bool {
      (a.address, a.port) < (b.address, b.port)
    }

    public var description: String {
      address.family == .ipv4 ? "\(address):\(port)" : "[\(address)]:\(port)"
    }
  }

  /// A NodePort in one IP family.
  public struct NodePort: Sendable, Hashable {
    public var family: IPAddress.Family
    public var port: UInt16

    public init(_ family: IPAddress.Family, _ port: UInt16) {
      self.family = family
      self.port = port
    }
  }

  /// ClusterIP, external IP and load-balancer IP frontends (address and service port), each
  /// with the endpoints whose flows stay.
  public var frontends: [HostPort: Set<HostPort>]
  /// NodePorts, each with the endpoints whose flows stay.
  public var nodePorts: [NodePort: Set<HostPort>]

  public init(
    frontends: [HostPort: Set<HostPort>] = [:], nodePorts: [NodePort: Set<HostPort>] = [:]
  ) {
    self.frontends = frontends
    self.nodePorts = nodePorts
  }

  /// Nothing to check: no conntrack dump is needed.
  public var isEmpty: Bool { frontends.isEmpty && nodePorts.isEmpty }

  /// Frontends and NodePorts to check.
  public var count: Int { frontends.count + nodePorts.count }

  /// The IP families that have something to check.
  public var families: Set<IPAddress.Family> {
    Set(frontends.keys.map(\.address.family)).union(nodePorts.keys.map(\.family))
  }

  /// Whether a UDP flow whose original destination is `originalDestination` and whose replies
  /// come from `replySource` must be deleted.
  ///
  /// A flow to a service address is stale unless its reply source is a serving endpoint. A
  /// flow to a NodePort (on any address) is stale only if it was DNATed, to an address that is
  /// not a serving endpoint: un-NATed flows that merely share the port number are not ours.
  public func isStale(originalDestination: HostPort, replySource: HostPort) -> Bool {
    if let keep = frontends[originalDestination] { return !keep.contains(replySource) }
    let nodePort = NodePort(originalDestination.address.family, originalDestination.port)
    if let keep = nodePorts[nodePort], replySource != originalDestination {
      return !keep.contains(replySource)
    }
    return false
  }
}

/// kube-proxy's UDP conntrack reconciliation (`conntrack.CleanStaleEntries`) as a pure function.
public enum StaleUDPFlows {
  /// The frontends to check after a sync from `previous` to `current`.
  ///
  /// Without `previous` (first sync, full resync, `run --once`) every UDP frontend is checked,
  /// as kube-proxy does on every sync. With it, only frontends whose serving endpoints changed
  /// (which covers going from no endpoints to some) and frontends that disappeared (their flows
  /// all go); when nothing changed the filter is empty and no dump is needed.
  public static func filter(previous: ResolvedCluster?, current: ResolvedCluster)
    -> StaleUDPFilter
  {
    let now = all(current)
    guard let previous else { return now }
    let before = all(previous)
    var out = StaleUDPFilter()
    for (frontend, keep) in now.frontends where before.frontends[frontend] != keep {
      out.frontends[frontend] = keep
    }
    for frontend in before.frontends.keys where now.frontends[frontend] == nil {
      out.frontends[frontend] = []
    }
    for (nodePort, keep) in now.nodePorts where before.nodePorts[nodePort] != keep {
      out.nodePorts[nodePort] = keep
    }
    for nodePort in before.nodePorts.keys where now.nodePorts[nodePort] == nil {
      out.nodePorts[nodePort] = []
    }
    return out
  }

  /// Every UDP frontend of `cluster` with its serving endpoints. Service ports that share a
  /// frontend keep the union of their endpoints.
  static func all(_ cluster: ResolvedCluster) -> StaleUDPFilter {
    var out = StaleUDPFilter()
    for sp in cluster.servicePorts where sp.proto == .udp {
      let keep = Set(sp.servingEndpoints.map { StaleUDPFilter.HostPort($0.address, $0.port) })
      for address in [sp.clusterIP] + sp.externalIPs + sp.loadBalancerIPs {
        out.frontends[StaleUDPFilter.HostPort(address, sp.port), default: []].formUnion(keep)
      }
      if let nodePort = sp.nodePort {
        out.nodePorts[StaleUDPFilter.NodePort(sp.family, nodePort), default: []].formUnion(keep)
      }
    }
    return out
  }
}
