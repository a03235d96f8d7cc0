import KubeModel
import NFTables

/// What one call of ``RuleApplier/apply(_:full:)`` did to the kernel.
public struct ApplyResult: Sendable, Equatable {
  /// How the rules were programmed.
  public enum Kind: String, Sendable, Equatable {
    /// Everything nftproxy owns was replaced in one transaction.
    case full
    /// Only the difference from the previously applied rule set was sent.
    case partial
    /// Nothing differed; no transaction was sent.
    case none
  }

  public var kind: Kind
  /// Netlink messages sent in the transaction (0 for `.none`).
  public var messages: Int
  /// Why this kind, or other detail for the log (e.g. "ruleset generation changed").
  public var detail: String?

  public init(kind: Kind, messages: Int = 0, detail: String? = nil) {
    self.kind = kind
    self.messages = messages
    self.detail = detail
  }
}

/// Programs a rule set into the kernel. The netlink backend is adapted to this.
///
/// Contract: `apply` is atomic. When it throws, the previously applied rules are still in place
/// (the kernel rejected the whole transaction). `full: true` asks for a complete replacement of
/// everything nftproxy owns (repairing drift); `full: false` allows a diff against the last
/// successfully applied rule set. An implementation may upgrade a partial request to a full one
/// and says so in the result.
public protocol RuleApplier: Sendable {
  func apply(_ ruleset: Ruleset, full: Bool) async throws -> ApplyResult
}

/// One complete view of the cluster handed to the sync loop.
public struct StateUpdate: Sendable, Equatable {
  /// Services, EndpointSlices and this node's Node, complete (never a partial initial list).
  public var state: ClusterState
  /// Service adds, updates and deletes since the previous update (the initial view counts its
  /// Services as adds). Feeds `kubeproxy_sync_proxy_rules_service_changes_total`.
  public var serviceChanges: Int
  /// EndpointSlice changes since the previous update, counted the same way.
  public var endpointChanges: Int

  public init(state: ClusterState, serviceChanges: Int = 0, endpointChanges: Int = 0) {
    self.state = state
    self.serviceChanges = serviceChanges
    self.endpointChanges = endpointChanges
  }

  /// An update for `new` whose change counts are the objects added, changed or removed
  /// relative to `old` (nil: everything in `new` is an add). For sources that deliver only
  /// snapshots, such as re-read manifest files.
  public static func diff(from old: ClusterState?, to new: ClusterState) -> StateUpdate {
    StateUpdate(
      state: new,
      serviceChanges: changes(old?.services ?? [], new.services, key: \.key),
      endpointChanges: changes(old?.endpointSlices ?? [], new.endpointSlices, key: \.key))
  }

  static func changes<T: Equatable>(_ old: [T], _ new: [T], key: (T) -> String) -> Int {
    var before: [String: T] = [:]
    for o in old { before[key(o)] = o }
    var count = 0
    var seen = Set<String>()
    for n in new {
      let k = key(n)
      seen.insert(k)
      if before[k] != n { count += 1 }
    }
    for k in before.keys where !seen.contains(k) { count += 1 }
    return count
  }
}

/// Delivers cluster views to the sync loop. The Kubernetes watcher and the manifest reader are
/// adapted to this.
///
/// Contract: the first update is the complete initial view (every initial list is in); later
/// updates are complete views too, each replacing the previous one. ``states()`` is called once
/// and has a single consumer. ``run()`` does the background work that produces the updates
/// (the API watch, file watching); the daemon runs it as a service next to the sync loop and
/// cancels it on shutdown.
public protocol StateSource: Sendable {
  /// The stream of updates.
  func states() -> AsyncStream<StateUpdate>
  /// Produces the updates until cancelled. The default waits for cancellation.
  func run() async throws
}

extension StateSource {
  public func run() async throws { try await waitForCancellation() }
}

/// Suspends until the current task is cancelled, then throws `CancellationError`.
func waitForCancellation() async throws {
  while true { try await Task.sleep(for: .seconds(86_400)) }
}

/// A ``StateSource`` made of a stream and an optional producer.
///
/// Adapting a producer that delivers cumulative counters (such as KubeWatch's snapshots) is a
/// matter of subtracting the previous totals before yielding.
public struct StreamStateSource: StateSource {
  private let stream: AsyncStream<StateUpdate>
  private let producer: (@Sendable () async throws -> Void)?

  /// - Parameters:
  ///   - stream: the updates (first = complete initial view).
  ///   - run: background work feeding `stream`; nil when someone else drives it.
  public init(
    _ stream: AsyncStream<StateUpdate>, run: (@Sendable () async throws -> Void)? = nil
  ) {
    self.stream = stream
    self.producer = run
  }

  public func states() -> AsyncStream<StateUpdate> { stream }

  public func run() async throws {
    if let producer {
      try await producer()
    } else {
      try await waitForCancellation()
    }
  }
}
