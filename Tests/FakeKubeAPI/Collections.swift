import KubeModel

extension FakeAPIServer {
  /// The collections a proxy lists and watches.
  public static let servicesPath = "/api/v1/services"
  public static let endpointSlicesPath = "/apis/discovery.k8s.io/v1/endpointslices"
  public static let nodesPath = "/api/v1/nodes"

  /// Creates or replaces a Service; returns its resourceVersion.
  @discardableResult
  public func put(_ service: Service, notify: Bool = true) throws -> Int {
    try put(service, path: Self.servicesPath, notify: notify)
  }

  /// Creates or replaces an EndpointSlice; returns its resourceVersion.
  @discardableResult
  public func put(_ slice: EndpointSlice, notify: Bool = true) throws -> Int {
    try put(slice, path: Self.endpointSlicesPath, notify: notify)
  }

  /// Creates or replaces a Node; returns its resourceVersion.
  @discardableResult
  public func put(_ node: Node, notify: Bool = true) throws -> Int {
    try put(node, path: Self.nodesPath, notify: notify)
  }

  /// Deletes the Service `namespace/name`; returns the deletion's resourceVersion.
  @discardableResult
  public func deleteService(_ key: String, notify: Bool = true) -> Int? {
    delete(path: Self.servicesPath, key: key, notify: notify)
  }

  /// Deletes the EndpointSlice `namespace/name`; returns the deletion's resourceVersion.
  @discardableResult
  public func deleteEndpointSlice(_ key: String, notify: Bool = true) -> Int? {
    delete(path: Self.endpointSlicesPath, key: key, notify: notify)
  }

  /// Watch requests on `path` in arrival order.
  public func watchRequests(path: String) -> [Request] {
    requests(path: path, watch: true)
  }

  /// List requests on `path` (every page counts) in arrival order.
  public func listRequests(path: String) -> [Request] {
    requests(path: path, watch: false)
  }
}
