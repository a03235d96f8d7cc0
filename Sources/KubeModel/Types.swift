/// Kubernetes API types nftproxy reads. Only the fields the proxy needs are modelled;
/// unknown fields are ignored by decoding.

public struct ObjectMeta: Codable, Sendable, Equatable {
  public var name: String?
  public var namespace: String?
  public var labels: [String: String]?
  public var annotations: [String: String]?
  public var resourceVersion: String?
  public var uid: String?

  public init(
    name: String? = nil, namespace: String? = nil, labels: [String: String]? = nil,
    annotations: [String: String]? = nil, resourceVersion: String? = nil, uid: String? = nil
  ) {
    self.name = name
    self.namespace = namespace
    self.labels = labels
    self.annotations = annotations
    self.resourceVersion = resourceVersion
    self.uid = uid
  }
}

/// `v1/Service`.
public struct Service: Codable, Sendable, Equatable {
  public var apiVersion: String?
  public var kind: String?
  public var metadata: ObjectMeta
  public var spec: ServiceSpec
  public var status: ServiceStatus?

  public init(
    metadata: ObjectMeta, spec: ServiceSpec, status: ServiceStatus? = nil
  ) {
    self.apiVersion = "v1"
    self.kind = "Service"
    self.metadata = metadata
    self.spec = spec
    self.status = status
  }

  /// `namespace/name`, with `default` for a missing namespace.
  public var key: String { "\(metadata.namespace ?? "default")/\(metadata.name ?? "")" }
}

public struct ServiceSpec: Codable, Sendable, Equatable {
  public var type: String?
  public var clusterIP: String?
  public var clusterIPs: [String]?
  public var ipFamilies: [String]?
  public var ports: [ServicePort]?
  public var selector: [String: String]?
  public var externalIPs: [String]?
  public var externalName: String?
  public var loadBalancerIP: String?
  public var loadBalancerSourceRanges: [String]?
  public var externalTrafficPolicy: String?
  public var internalTrafficPolicy: String?
  public var healthCheckNodePort: Int?
  public var sessionAffinity: String?
  public var sessionAffinityConfig: SessionAffinityConfig?
  public var trafficDistribution: String?

  public init(
    type: String? = nil, clusterIP: String? = nil, clusterIPs: [String]? = nil,
    ipFamilies: [String]? = nil, ports: [ServicePort]? = nil, selector: [String: String]? = nil,
    externalIPs: [String]? = nil, externalName: String? = nil, loadBalancerIP: String? = nil,
    loadBalancerSourceRanges: [String]? = nil, externalTrafficPolicy: String? = nil,
    internalTrafficPolicy: String? = nil, healthCheckNodePort: Int? = nil,
    sessionAffinity: String? = nil, sessionAffinityConfig: SessionAffinityConfig? = nil,
    trafficDistribution: String? = nil
  ) {
    self.type = type
    self.clusterIP = clusterIP
    self.clusterIPs = clusterIPs
    self.ipFamilies = ipFamilies
    self.ports = ports
    self.selector = selector
    self.externalIPs = externalIPs
    self.externalName = externalName
    self.loadBalancerIP = loadBalancerIP
    self.loadBalancerSourceRanges = loadBalancerSourceRanges
    self.externalTrafficPolicy = externalTrafficPolicy
    self.internalTrafficPolicy = internalTrafficPolicy
    self.healthCheckNodePort = healthCheckNodePort
    self.sessionAffinity = sessionAffinity
    self.sessionAffinityConfig = sessionAffinityConfig
    self.trafficDistribution = trafficDistribution
  }
}

/// A port's `targetPort` is either a number or a name (IntOrString).
public enum IntOrString: Codable, Sendable, Equatable, Hashable {
  case int(Int)
  case string(String)

  public init(from decoder: any Decoder) throws {
    let c = try decoder.singleValueContainer()
    if let i = try? c.decode(Int.self) {
      self = .int(i)
    } else {
      self = .string(try c.decode(String.self))
    }
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.singleValueContainer()
    switch self {
    case .int(let i): try c.encode(i)
    case .string(let s): try c.encode(s)
    }
  }
}

public struct ServicePort: Codable, Sendable, Equatable {
  public var name: String?
  public var `protocol`: String?
  public var port: Int
  public var targetPort: IntOrString?
  public var nodePort: Int?

  public init(
    name: String? = nil, protocol: String? = nil, port: Int, targetPort: IntOrString? = nil,
    nodePort: Int? = nil
  ) {
    self.name = name
    self.protocol = `protocol`
    self.port = port
    self.targetPort = targetPort
    self.nodePort = nodePort
  }
}

public struct SessionAffinityConfig: Codable, Sendable, Equatable {
  public var clientIP: ClientIPConfig?
  public init(clientIP: ClientIPConfig? = nil) { self.clientIP = clientIP }
}

public struct ClientIPConfig: Codable, Sendable, Equatable {
  public var timeoutSeconds: Int?
  public init(timeoutSeconds: Int? = nil) { self.timeoutSeconds = timeoutSeconds }
}

public struct ServiceStatus: Codable, Sendable, Equatable {
  public var loadBalancer: LoadBalancerStatus?
  public init(loadBalancer: LoadBalancerStatus? = nil) { self.loadBalancer = loadBalancer }
}

public struct LoadBalancerStatus: Codable, Sendable, Equatable {
  public var ingress: [LoadBalancerIngress]?
  public init(ingress: [LoadBalancerIngress]? = nil) { self.ingress = ingress }
}

public struct LoadBalancerIngress: Codable, Sendable, Equatable {
  public var ip: String?
  public var hostname: String?
  /// `VIP` (default) or `Proxy`; `Proxy` ingresses get no node rules.
  public var ipMode: String?
  public init(ip: String? = nil, hostname: String? = nil, ipMode: String? = nil) {
    self.ip = ip
    self.hostname = hostname
    self.ipMode = ipMode
  }
}

/// `discovery.k8s.io/v1/EndpointSlice`.
public struct EndpointSlice: Codable, Sendable, Equatable {
  public var apiVersion: String?
  public var kind: String?
  public var metadata: ObjectMeta
  /// `IPv4`, `IPv6` or `FQDN`.
  public var addressType: String
  public var endpoints: [Endpoint]?
  public var ports: [EndpointPort]?

  public init(
    metadata: ObjectMeta, addressType: String, endpoints: [Endpoint]? = nil,
    ports: [EndpointPort]? = nil
  ) {
    self.apiVersion = "discovery.k8s.io/v1"
    self.kind = "EndpointSlice"
    self.metadata = metadata
    self.addressType = addressType
    self.endpoints = endpoints
    self.ports = ports
  }

  public static let serviceNameLabel = "kubernetes.io/service-name"

  /// The Service this slice belongs to (`namespace/name`), from its `kubernetes.io/service-name` label.
  public var serviceKey: String? {
    guard let svc = metadata.labels?[Self.serviceNameLabel], !svc.isEmpty else { return nil }
    return "\(metadata.namespace ?? "default")/\(svc)"
  }

  public var key: String { "\(metadata.namespace ?? "default")/\(metadata.name ?? "")" }
}

public struct Endpoint: Codable, Sendable, Equatable {
  public var addresses: [String]
  public var conditions: EndpointConditions?
  public var hostname: String?
  public var nodeName: String?
  public var zone: String?
  public var hints: EndpointHints?

  public init(
    addresses: [String], conditions: EndpointConditions? = nil, hostname: String? = nil,
    nodeName: String? = nil, zone: String? = nil, hints: EndpointHints? = nil
  ) {
    self.addresses = addresses
    self.conditions = conditions
    self.hostname = hostname
    self.nodeName = nodeName
    self.zone = zone
    self.hints = hints
  }
}

public struct EndpointConditions: Codable, Sendable, Equatable {
  public var ready: Bool?
  public var serving: Bool?
  public var terminating: Bool?
  public init(ready: Bool? = nil, serving: Bool? = nil, terminating: Bool? = nil) {
    self.ready = ready
    self.serving = serving
    self.terminating = terminating
  }
}

public struct EndpointHints: Codable, Sendable, Equatable {
  public var forZones: [ForZone]?
  public var forNodes: [ForNode]?
  public init(forZones: [ForZone]? = nil, forNodes: [ForNode]? = nil) {
    self.forZones = forZones
    self.forNodes = forNodes
  }
}

public struct ForZone: Codable, Sendable, Equatable {
  public var name: String
  public init(name: String) { self.name = name }
}

public struct ForNode: Codable, Sendable, Equatable {
  public var name: String
  public init(name: String) { self.name = name }
}

public struct EndpointPort: Codable, Sendable, Equatable {
  public var name: String?
  public var `protocol`: String?
  public var port: Int?
  public init(name: String? = nil, protocol: String? = nil, port: Int? = nil) {
    self.name = name
    self.protocol = `protocol`
    self.port = port
  }
}

/// `v1/Node`.
public struct Node: Codable, Sendable, Equatable {
  public var apiVersion: String?
  public var kind: String?
  public var metadata: ObjectMeta
  public var spec: NodeSpec?
  public var status: NodeStatus?

  public init(metadata: ObjectMeta, spec: NodeSpec? = nil, status: NodeStatus? = nil) {
    self.apiVersion = "v1"
    self.kind = "Node"
    self.metadata = metadata
    self.spec = spec
    self.status = status
  }

  public static let zoneLabel = "topology.kubernetes.io/zone"
}

public struct NodeSpec: Codable, Sendable, Equatable {
  public var podCIDR: String?
  public var podCIDRs: [String]?
  public init(podCIDR: String? = nil, podCIDRs: [String]? = nil) {
    self.podCIDR = podCIDR
    self.podCIDRs = podCIDRs
  }
}

public struct NodeStatus: Codable, Sendable, Equatable {
  public var addresses: [NodeAddress]?
  public init(addresses: [NodeAddress]? = nil) { self.addresses = addresses }
}

public struct NodeAddress: Codable, Sendable, Equatable {
  public var type: String
  public var address: String
  public init(type: String, address: String) {
    self.type = type
    self.address = address
  }
}

/// The objects nftproxy cares about, as read from manifests or the API.
public struct ClusterState: Sendable, Equatable {
  public var services: [Service]
  public var endpointSlices: [EndpointSlice]
  public var nodes: [Node]

  public init(services: [Service] = [], endpointSlices: [EndpointSlice] = [], nodes: [Node] = []) {
    self.services = services
    self.endpointSlices = endpointSlices
    self.nodes = nodes
  }
}
