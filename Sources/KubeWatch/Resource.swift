import KubeModel

/// A collection on the API server that can be listed and watched, with its selectors.
public struct Resource<Object: KubeObject>: Sendable, Equatable {
  /// A short name for logs (`services`).
  public var name: String
  /// The collection path, e.g. `/api/v1/services`.
  public var path: String
  /// `labelSelector` sent with list and watch requests.
  public var labelSelector: String?
  /// `fieldSelector` sent with list and watch requests.
  public var fieldSelector: String?

  public init(
    name: String, path: String, labelSelector: String? = nil, fieldSelector: String? = nil
  ) {
    self.name = name
    self.path = path
    self.labelSelector = labelSelector
    self.fieldSelector = fieldSelector
  }
}

/// Label selectors kube-proxy uses to skip objects it must not handle.
public enum ProxySelectors {
  /// Services handled by another proxy carry this label.
  public static let serviceProxyName = "service.kubernetes.io/service-proxy-name"
  /// Headless Services (and their slices) carry this label.
  public static let headless = "service.kubernetes.io/headless"
  /// Services: neither labelled for another proxy nor headless.
  public static let services = "!\(serviceProxyName),!\(headless)"
  /// EndpointSlices: not of a headless Service.
  public static let endpointSlices = "!\(headless)"
}

extension Resource where Object == Service {
  /// All Services in all namespaces, with kube-proxy's label selector.
  public static var services: Resource<Service> {
    Resource(name: "services", path: "/api/v1/services", labelSelector: ProxySelectors.services)
  }
}

extension Resource where Object == EndpointSlice {
  /// All EndpointSlices in all namespaces, except those of headless Services.
  public static var endpointSlices: Resource<EndpointSlice> {
    Resource(
      name: "endpointslices", path: "/apis/discovery.k8s.io/v1/endpointslices",
      labelSelector: ProxySelectors.endpointSlices)
  }
}

extension Resource where Object == Node {
  /// Only the Node called `name` (`fieldSelector=metadata.name=NAME`).
  public static func node(named name: String) -> Resource<Node> {
    Resource(name: "nodes", path: "/api/v1/nodes", fieldSelector: "metadata.name=\(name)")
  }
}
