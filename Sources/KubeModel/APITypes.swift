/// API envelope types for list and watch responses of the Kubernetes API server.

/// `metadata` of a list response.
public struct ListMeta: Codable, Sendable, Equatable {
  public var resourceVersion: String?
  /// Continuation token of a paginated list (`continue`).
  public var `continue`: String?
  public var remainingItemCount: Int?

  public init(
    resourceVersion: String? = nil, continue: String? = nil, remainingItemCount: Int? = nil
  ) {
    self.resourceVersion = resourceVersion
    self.continue = `continue`
    self.remainingItemCount = remainingItemCount
  }
}

/// A typed list response such as `ServiceList`; a missing or null `items` decodes as empty.
public struct KubeList<Item: Codable & Sendable>: Codable, Sendable {
  public var apiVersion: String?
  public var kind: String?
  public var metadata: ListMeta?
  public var items: [Item]

  public init(
    apiVersion: String? = nil, kind: String? = nil, metadata: ListMeta? = nil, items: [Item]
  ) {
    self.apiVersion = apiVersion
    self.kind = kind
    self.metadata = metadata
    self.items = items
  }

  enum CodingKeys: String, CodingKey { case apiVersion, kind, metadata, items }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    apiVersion = try c.decodeIfPresent(String.self, forKey: .apiVersion)
    kind = try c.decodeIfPresent(String.self, forKey: .kind)
    metadata = try c.decodeIfPresent(ListMeta.self, forKey: .metadata)
    items = try c.decodeIfPresent([Item].self, forKey: .items) ?? []
  }
}

extension KubeList: Equatable where Item: Equatable {}

/// `Status` (`v1/Status`): the body of a failed request and of a watch `ERROR` event.
public struct Status: Codable, Sendable, Equatable, Error, CustomStringConvertible {
  public var apiVersion: String?
  public var kind: String?
  public var metadata: ListMeta?
  /// `Success` or `Failure`.
  public var status: String?
  public var message: String?
  /// Machine-readable reason, e.g. `Expired` or `Gone` (410 after a compaction).
  public var reason: String?
  /// HTTP status code, e.g. 410.
  public var code: Int?

  public init(
    status: String? = nil, message: String? = nil, reason: String? = nil, code: Int? = nil,
    metadata: ListMeta? = nil
  ) {
    self.apiVersion = "v1"
    self.kind = "Status"
    self.metadata = metadata
    self.status = status
    self.message = message
    self.reason = reason
    self.code = code
  }

  /// `code reason: message`, leaving out what is missing.
  public var description: String {
    [code.map(String.init), reason, message].compactMap { $0 }.joined(separator: " ")
  }
}

/// Event types of a watch stream.
public enum WatchEventType: String, Codable, Sendable, Equatable {
  case added = "ADDED"
  case modified = "MODIFIED"
  case deleted = "DELETED"
  case bookmark = "BOOKMARK"
  case error = "ERROR"
}

/// One line of a watch stream (`{"type": ..., "object": ...}`).
///
/// `ADDED`, `MODIFIED` and `DELETED` carry the object; `BOOKMARK` carries only a resource version
/// (its object is not a complete `Object`); `ERROR` carries a ``Status``.
public enum WatchEvent<Object: Codable & Sendable>: Codable, Sendable {
  case added(Object)
  case modified(Object)
  case deleted(Object)
  case bookmark(resourceVersion: String)
  case error(Status)

  /// The event's type.
  public var type: WatchEventType {
    switch self {
    case .added: .added
    case .modified: .modified
    case .deleted: .deleted
    case .bookmark: .bookmark
    case .error: .error
    }
  }

  enum CodingKeys: String, CodingKey { case type, object }

  private struct MetadataOnly: Codable {
    struct Meta: Codable { var resourceVersion: String? }
    var metadata: Meta?
  }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    let type = try c.decode(WatchEventType.self, forKey: .type)
    switch type {
    case .added: self = .added(try c.decode(Object.self, forKey: .object))
    case .modified: self = .modified(try c.decode(Object.self, forKey: .object))
    case .deleted: self = .deleted(try c.decode(Object.self, forKey: .object))
    case .bookmark:
      let meta = try c.decode(MetadataOnly.self, forKey: .object)
      self = .bookmark(resourceVersion: meta.metadata?.resourceVersion ?? "")
    case .error: self = .error(try c.decode(Status.self, forKey: .object))
    }
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(type, forKey: .type)
    switch self {
    case .added(let o), .modified(let o), .deleted(let o): try c.encode(o, forKey: .object)
    case .bookmark(let rv):
      try c.encode(
        MetadataOnly(metadata: MetadataOnly.Meta(resourceVersion: rv)), forKey: .object)
    case .error(let status): try c.encode(status, forKey: .object)
    }
  }
}

extension WatchEvent: Equatable where Object: Equatable {}
