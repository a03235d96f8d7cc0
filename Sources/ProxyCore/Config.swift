import IPAddr

/// How nftproxy tells traffic from this cluster's pods apart from everything else
/// (kube-proxy's `--detect-local-mode`).
public enum DetectLocalMode: String, Sendable, CaseIterable {
  /// Pods are the sources inside `--cluster-cidr`.
  case clusterCIDR = "ClusterCIDR"
  /// Pods are the sources inside this node's `spec.podCIDRs`.
  case nodeCIDR = "NodeCIDR"
}

/// Which local addresses accept NodePort traffic (kube-proxy's `--nodeport-addresses`).
public enum NodePortAddresses: Sendable, Equatable {
  /// The node's primary IP of each family (kube-proxy's default since 1.29).
  case primary
  /// Local addresses inside these CIDRs.
  case cidrs([CIDR])
}

/// Node and cluster settings that shape the rules, from flags and the Node object.
public struct ProxyConfig: Sendable, Equatable {
  /// This node's name (`--hostname-override`); endpoints with this `nodeName` are local.
  public var hostname: String
  /// `--node-ip` values; when empty, the Node object's addresses are used.
  public var nodeIPs: [IPAddress]
  public var clusterCIDRs: [CIDR]
  /// Service CIDRs: traffic to unallocated addresses inside them is dropped.
  public var serviceCIDRs: [CIDR]
  public var nodePortAddresses: NodePortAddresses
  public var masqueradeAll: Bool
  public var detectLocalMode: DetectLocalMode
  /// The packet mark bit that requests masquerading (kube-proxy's `--masquerade-bit`, default 14).
  public var masqueradeBit: Int
  /// Name of nftproxy's tables (one per family).
  public var tableName: String

  public init(
    hostname: String = "", nodeIPs: [IPAddress] = [], clusterCIDRs: [CIDR] = [],
    serviceCIDRs: [CIDR] = [], nodePortAddresses: NodePortAddresses = .primary,
    masqueradeAll: Bool = false, detectLocalMode: DetectLocalMode = .clusterCIDR,
    masqueradeBit: Int = 14, tableName: String = "nftproxy"
  ) {
    self.hostname = hostname
    self.nodeIPs = nodeIPs
    self.clusterCIDRs = clusterCIDRs
    self.serviceCIDRs = serviceCIDRs
    self.nodePortAddresses = nodePortAddresses
    self.masqueradeAll = masqueradeAll
    self.detectLocalMode = detectLocalMode
    self.masqueradeBit = masqueradeBit
    self.tableName = tableName
  }

  public var masqueradeMark: UInt32 { UInt32(1) << UInt32(masqueradeBit) }
}
