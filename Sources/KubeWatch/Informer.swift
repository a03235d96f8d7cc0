import KubeModel
import Logging

/// Tuning of list+watch.
public struct InformerOptions: Sendable {
  /// `limit` of each list page.
  public var pageSize: Int
  /// The watch `timeoutSeconds` is picked at random from this range (as client-go does).
  public var watchTimeoutSeconds: ClosedRange<Int>
  /// First retry delay after a failure; doubles per consecutive failure.
  public var initialBackoff: Duration
  /// Upper bound of the retry delay.
  public var maxBackoff: Duration
  /// Relative jitter applied to each delay (0.2 = ±20 %).
  public var jitter: Double

  public init(
    pageSize: Int = 500, watchTimeoutSeconds: ClosedRange<Int> = 300...600,
    initialBackoff: Duration = .milliseconds(500), maxBackoff: Duration = .seconds(30),
    jitter: Double = 0.2
  ) {
    self.pageSize = pageSize
    self.watchTimeoutSeconds = watchTimeoutSeconds
    self.initialBackoff = initialBackoff
    self.maxBackoff = maxBackoff
    self.jitter = jitter
  }
}

/// Exponential backoff with jitter.
public struct Backoff: Sendable {
  public var initial: Duration
  public var maximum: Duration
  public var jitter: Double
  /// Consecutive failures so far.
  public private(set) var failures = 0

  public init(initial: Duration, maximum: Duration, jitter: Double) {
    self.initial = initial
    self.maximum = maximum
    self.jitter = jitter
  }

  /// Records a failure and returns how long to wait before the next attempt:
  /// `initial * 2^(failures-1)`, capped at `maximum`, times a random factor in `1 ± jitter`.
  public mutating func nextDelay() -> Duration {
    failures += 1
    var base = initial
    for _ in 1..<min(failures, 40) {
      base = base * 2
      if base >= maximum { break }
    }
    base = min(base, maximum)
    let factor = jitter > 0 ? Double.random(in: (1 - jitter)...(1 + jitter)) : 1
    return base * factor
  }

  /// Records a success.
  public mutating func reset() { failures = 0 }
}

/// One change of an informer's store.
public enum ObjectChange<Object: KubeObject>: Sendable, Equatable {
  case added(Object)
  case modified(old: Object, new: Object)
  case deleted(Object)

  /// The store key of the changed object.
  public var key: String {
    switch self {
    case .added(let o), .deleted(let o), .modified(_, let o): o.metadata.storeKey
    }
  }
}

/// What an informer reports after each change of its store.
public struct InformerUpdate<Object: KubeObject>: Sendable {
  /// Why the store changed.
  public enum Reason: Sendable, Equatable {
    /// The first complete list.
    case initialList
    /// A list after a 410 (expired resourceVersion): the store was replaced.
    case relist
    /// A watch event.
    case watchEvent
  }

  public var reason: Reason
  /// The differences against the previous store (empty for a relist that changed nothing).
  public var changes: [ObjectChange<Object>]
  /// The whole store after the update, keyed `namespace/name`.
  public var objects: [String: Object]
  /// The resourceVersion the informer would resume from.
  public var resourceVersion: String
}

/// List+watch of one resource, as client-go's reflector does it: list (all pages) into a store,
/// watch from the list's resourceVersion, resume from the last seen resourceVersion (events and
/// bookmarks) after a dropped connection or a watch timeout, relist and replace the store after a
/// 410, back off with jitter on repeated failures. Objects failing `validate` are logged and
/// kept out of the store.
public struct Informer<Object: KubeObject>: Sendable {
  /// Validates and normalizes an object; returns it and warnings, or throws to exclude it.
  public typealias Validator = @Sendable (Object) throws -> (Object, [String])

  public let client: KubeClient
  public let resource: Resource<Object>
  public let options: InformerOptions
  let validate: Validator?
  let logger: Logger

  public init(
    client: KubeClient, resource: Resource<Object>, options: InformerOptions = InformerOptions(),
    validate: Validator? = nil, logger: Logger = Logger(label: "nftproxy.kubewatch")
  ) {
    self.client = client
    self.resource = resource
    self.options = options
    self.validate = validate
    var logger = logger
    logger[metadataKey: "resource"] = "\(resource.name)"
    self.logger = logger
  }

  /// Runs until the task is cancelled (then throws `CancellationError`). `onUpdate` is called,
  /// one call at a time, after the initial list, after each relist and after each watch event
  /// that changed the store.
  public func run(onUpdate: @Sendable (InformerUpdate<Object>) async -> Void) async throws {
    var store: [String: Object] = [:]
    var resourceVersion: String?
    var listed = false
    var backoff = Backoff(
      initial: options.initialBackoff, maximum: options.maxBackoff, jitter: options.jitter)

    while true {
      try Task.checkCancellation()
      var eventsReceived = 0
      var justListed = false
      do {
        if resourceVersion == nil {
          let list = try await client.list(resource, pageSize: options.pageSize)
          var fresh: [String: Object] = [:]
          for item in list.items {
            if let valid = validated(item) { fresh[item.metadata.storeKey] = valid }
          }
          for u in list.undecodable {
            logger.warning(
              "skipping object that does not decode",
              metadata: ["object": "\(u.metadata?.storeKey ?? "?")", "error": "\(u.error)"])
          }
          let changes = Self.diff(old: store, new: fresh)
          store = fresh
          resourceVersion = list.resourceVersion
          logger.debug(
            "listed",
            metadata: [
              "objects": "\(store.count)", "pages": "\(list.pages)",
              "resourceVersion": "\(list.resourceVersion)",
            ])
          await onUpdate(
            InformerUpdate(
              reason: listed ? .relist : .initialList, changes: changes, objects: store,
              resourceVersion: list.resourceVersion))
          listed = true
          justListed = true
          backoff.reset()
        }

        let timeout = Int.random(in: options.watchTimeoutSeconds)
        let stream = try await client.watch(
          resource, resourceVersion: resourceVersion ?? "", timeoutSeconds: timeout)
        var gone = false
        events: for try await event in stream {
          eventsReceived += 1
          var changes: [ObjectChange<Object>] = []
          switch event {
          case .added(let object), .modified(let object):
            resourceVersion = object.metadata.resourceVersion ?? resourceVersion
            let key = object.metadata.storeKey
            let old = store[key]
            if let valid = validated(object) {
              store[key] = valid
              if let old {
                if old != valid { changes.append(.modified(old: old, new: valid)) }
              } else {
                changes.append(.added(valid))
              }
            } else if let old {
              store[key] = nil
              changes.append(.deleted(old))
            }
          case .deleted(let object):
            resourceVersion = object.metadata.resourceVersion ?? resourceVersion
            if let old = store.removeValue(forKey: object.metadata.storeKey) {
              changes.append(.deleted(old))
            }
          case .bookmark(let rv):
            if !rv.isEmpty { resourceVersion = rv }
          case .undecodable(let type, let object):
            let key = object.metadata?.storeKey
            logger.warning(
              "skipping \(type.rawValue) event whose object does not decode",
              metadata: ["object": "\(key ?? "?")", "error": "\(object.error)"])
            if let rv = object.metadata?.resourceVersion, !rv.isEmpty { resourceVersion = rv }
            if let key, let old = store.removeValue(forKey: key) {
              changes.append(.deleted(old))
            }
          case .error(let status):
            if status.code == 410 {
              gone = true
              break events
            }
            throw KubeAPIError(
              kind: .httpStatus(status.code ?? 500), url: stream.url,
              message: "watch ERROR event: \(status)", status: status)
          }
          if !changes.isEmpty {
            await onUpdate(
              InformerUpdate(
                reason: .watchEvent, changes: changes, objects: store,
                resourceVersion: resourceVersion ?? ""))
          }
        }
        try Task.checkCancellation()
        if gone {
          try await handleGone(
            "watch ERROR event 410", justListed: justListed, eventsReceived: eventsReceived,
            backoff: &backoff)
          resourceVersion = nil
        } else if eventsReceived > 0 {
          // A normal end (server-side timeout): resume at once.
          backoff.reset()
          logger.debug(
            "watch ended; resuming", metadata: ["resourceVersion": "\(resourceVersion ?? "")"])
        } else {
          // An empty watch: resume, but never spin on a server that ends watches at once.
          try await Task.sleep(for: backoff.nextDelay())
        }
      } catch is CancellationError {
        throw CancellationError()
      } catch let error as KubeAPIError where error.kind == .gone {
        try await handleGone(
          error.description, justListed: justListed, eventsReceived: eventsReceived,
          backoff: &backoff)
        resourceVersion = nil
      } catch {
        if Task.isCancelled { throw CancellationError() }
        if eventsReceived > 0 { backoff.reset() }
        let delay = backoff.nextDelay()
        logger.warning(
          "\(resourceVersion == nil ? "list" : "watch") failed; retrying",
          metadata: [
            "error": "\(error)", "retryIn": "\(delay)", "failures": "\(backoff.failures)",
            "resourceVersion": "\(resourceVersion ?? "")",
          ])
        try await Task.sleep(for: delay)
      }
    }
  }

  /// A 410: relist now, unless the watch that failed started right from a list (then back off,
  /// so a server that always answers 410 is not hammered).
  private func handleGone(
    _ what: String, justListed: Bool, eventsReceived: Int, backoff: inout Backoff
  ) async throws {
    if justListed && eventsReceived <= 1 {
      let delay = backoff.nextDelay()
      logger.warning(
        "resourceVersion expired right after a list; relisting", metadata: ["retryIn": "\(delay)"])
      try await Task.sleep(for: delay)
    } else {
      logger.info("resourceVersion expired (\(what)); relisting")
    }
  }

  private func validated(_ object: Object) -> Object? {
    guard let validate else { return object }
    do {
      let (valid, warnings) = try validate(object)
      for w in warnings {
        logger.warning("\(w)", metadata: ["object": "\(object.metadata.storeKey)"])
      }
      return valid
    } catch {
      logger.error(
        "invalid object excluded",
        metadata: ["object": "\(object.metadata.storeKey)", "error": "\(error)"])
      return nil
    }
  }

  /// The changes that turn `old` into `new`, ordered by key.
  static func diff(old: [String: Object], new: [String: Object]) -> [ObjectChange<Object>] {
    var changes: [ObjectChange<Object>] = []
    for key in Set(old.keys).union(new.keys).sorted() {
      switch (old[key], new[key]) {
      case (nil, let n?): changes.append(.added(n))
      case (let o?, nil): changes.append(.deleted(o))
      case (let o?, let n?) where o != n: changes.append(.modified(old: o, new: n))
      default: break
      }
    }
    return changes
  }
}
