import Synchronization

/// The monotonic time source of the sync loop and the health checks. Injectable so tests can
/// move time by hand (``ManualClock``).
public protocol SyncClock: Sendable {
  /// Monotonic time since an arbitrary, fixed origin.
  var now: Duration { get }
  /// Suspends until ``now`` has reached `deadline`; throws `CancellationError` when the task is
  /// cancelled first.
  func sleep(until deadline: Duration) async throws
}

/// The real clock: `ContinuousClock`, measured from the moment this value was created.
public struct ContinuousSyncClock: SyncClock {
  private let origin: ContinuousClock.Instant

  public init() { origin = ContinuousClock.now }

  public var now: Duration { ContinuousClock.now - origin }

  public func sleep(until deadline: Duration) async throws {
    try await ContinuousClock().sleep(until: origin + deadline, tolerance: nil)
  }
}

/// A clock that only moves when ``advance(by:)`` is called. For tests.
public final class ManualClock: SyncClock {
  private struct Sleeper {
    var deadline: Duration
    var continuation: CheckedContinuation<Void, any Error>
  }

  private struct State {
    var now: Duration = .zero
    var nextID = 0
    var sleepers: [Int: Sleeper] = [:]
  }

  private let state = Mutex(State())

  public init() {}

  public var now: Duration { state.withLock { $0.now } }

  /// Tasks currently suspended in ``sleep(until:)``.
  public var sleeperCount: Int { state.withLock { $0.sleepers.count } }

  /// Deadlines of the suspended sleepers, earliest first.
  public var pendingDeadlines: [Duration] {
    state.withLock { $0.sleepers.values.map(\.deadline).sorted() }
  }

  /// Moves time forward and resumes every sleeper whose deadline has been reached.
  public func advance(by delta: Duration) {
    let due: [CheckedContinuation<Void, any Error>] = state.withLock { s in
      s.now += delta
      let now = s.now
      let ready = s.sleepers.filter { $0.value.deadline <= now }
      for id in ready.keys { s.sleepers[id] = nil }
      return ready.sorted { $0.value.deadline < $1.value.deadline }.map(\.value.continuation)
    }
    for c in due { c.resume() }
  }

  public func sleep(until deadline: Duration) async throws {
    let id = state.withLock { s -> Int in
      s.nextID += 1
      return s.nextID
    }
    try await withTaskCancellationHandler {
      try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
        let outcome: Result<Void, any Error>? = state.withLock { s in
          if Task.isCancelled { return .failure(CancellationError()) }
          if deadline <= s.now { return .success(()) }
          s.sleepers[id] = Sleeper(deadline: deadline, continuation: c)
          return nil
        }
        if let outcome { c.resume(with: outcome) }
      }
    } onCancel: {
      let c = state.withLock { $0.sleepers.removeValue(forKey: id) }
      c?.continuation.resume(throwing: CancellationError())
    }
  }
}
