import KubeModel

/// A Kubernetes object the watcher can list and watch: anything with `metadata`.
public protocol KubeObject: Codable, Sendable, Equatable {
  /// The object's metadata (name, namespace, resourceVersion, labels).
  var metadata: ObjectMeta { get }
}

extension Service: KubeObject {}
extension EndpointSlice: KubeObject {}
extension Node: KubeObject {}

extension ObjectMeta {
  /// The informer store key: `namespace/name`, or just `name` for cluster-scoped objects.
  public var storeKey: String {
    if let ns = namespace, !ns.isEmpty { return "\(ns)/\(name ?? "")" }
    return name ?? ""
  }
}

/// Only the metadata of an object (used for bookmarks and objects that failed to decode).
struct PartialObject: Codable, Sendable, Equatable {
  var metadata: ObjectMeta?
}

/// An item of a list or watch event whose object could not be decoded into the model type.
public struct UndecodableObject: Sendable, Equatable {
  /// Whatever metadata could be read (for the store key and resourceVersion).
  public var metadata: ObjectMeta?
  /// Why decoding failed.
  public var error: String
}

/// One decoded event of a watch stream. Unlike `KubeModel.WatchEvent`, an object that does not
/// decode does not end the stream: it arrives as ``undecodable(_:_:)``.
public enum WatchStreamEvent<Object: KubeObject>: Sendable, Equatable {
  case added(Object)
  case modified(Object)
  case deleted(Object)
  /// A progress notification: everything up to this resourceVersion was delivered.
  case bookmark(resourceVersion: String)
  /// The server ended the watch with a `Status` (code 410 means the resourceVersion expired).
  case error(Status)
  /// An ADDED, MODIFIED or DELETED event whose object did not decode.
  case undecodable(WatchEventType, UndecodableObject)
}

/// The result of a complete (all pages) list.
public struct ListResult<Object: KubeObject>: Sendable {
  /// The items that decoded.
  public var items: [Object]
  /// Items that did not decode (logged and excluded by the informer).
  public var undecodable: [UndecodableObject]
  /// The list's resourceVersion: the point to start watching from.
  public var resourceVersion: String
  /// How many HTTP requests (pages) the list took.
  public var pages: Int
}

/// Decodes one list item or watch object, keeping the failure instead of failing the whole list.
struct Lenient<Object: Decodable & Sendable>: Decodable, Sendable {
  var result: Result<Object, UndecodableBox>

  struct UndecodableBox: Error, Sendable {
    var value: UndecodableObject
  }

  init(from decoder: any Decoder) throws {
    do {
      result = .success(try Object(from: decoder))
    } catch {
      let meta = try? PartialObject(from: decoder).metadata
      result = .failure(
        UndecodableBox(
          value: UndecodableObject(metadata: meta, error: describeDecodingError(error))))
    }
  }
}

/// The raw list document.
struct ObjectList<Object: Decodable & Sendable>: Decodable, Sendable {
  var metadata: ListMeta?
  var items: [Lenient<Object>]?
}

/// The raw watch event document; `object` is decoded according to `type`.
struct RawWatchEvent<Object: KubeObject>: Decodable {
  var event: WatchStreamEvent<Object>

  enum CodingKeys: String, CodingKey { case type, object }

  init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    let typeString = try c.decode(String.self, forKey: .type)
    guard let type = WatchEventType(rawValue: typeString) else {
      throw DecodingError.dataCorruptedError(
        forKey: .type, in: c, debugDescription: "unknown watch event type \(typeString)")
    }
    switch type {
    case .bookmark:
      let partial = try c.decode(PartialObject.self, forKey: .object)
      event = .bookmark(resourceVersion: partial.metadata?.resourceVersion ?? "")
    case .error:
      event = .error(try c.decode(Status.self, forKey: .object))
    case .added, .modified, .deleted:
      let lenient = try c.decode(Lenient<Object>.self, forKey: .object)
      switch lenient.result {
      case .success(let o):
        event = type == .added ? .added(o) : type == .modified ? .modified(o) : .deleted(o)
      case .failure(let box):
        event = .undecodable(type, box.value)
      }
    }
  }
}

/// A short, readable description of a `DecodingError` (field path and problem).
func describeDecodingError(_ error: any Error) -> String {
  guard let e = error as? DecodingError else { return "\(error)" }
  func path(_ keys: [any CodingKey]) -> String {
    let p = keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
    return p.isEmpty ? "<root>" : String(p.drop(while: { $0 == "." }))
  }
  switch e {
  case .typeMismatch(let t, let ctx):
    return "\(path(ctx.codingPath)): expected \(t): \(ctx.debugDescription)"
  case .valueNotFound(let t, let ctx):
    return "\(path(ctx.codingPath)): missing value of type \(t)"
  case .keyNotFound(let k, let ctx):
    return "\(path(ctx.codingPath + [k])): required field missing"
  case .dataCorrupted(let ctx):
    return "\(path(ctx.codingPath)): \(ctx.debugDescription)"
  @unknown default:
    return "\(e)"
  }
}
