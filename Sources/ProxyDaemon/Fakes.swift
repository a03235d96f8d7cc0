import KubeModel
import NFTables
import Synchronization

/// A ``StateSource`` fed by hand: ``send(_:)`` updates, ``finish()`` ends the stream. For tests
/// and for callers that produce updates themselves.
public final class StateChannel: StateSource {
  private let stream: AsyncStream<StateUpdate>
  private let continuation: AsyncStream<StateUpdate>.Continuation

  public init() {
    (stream, continuation) = AsyncStream.makeStream(of: StateUpdate.self)
  }

  public func states() -> AsyncStream<StateUpdate> { stream }

  /// Delivers an update (the first one must be complete).
  public func send(_ update: StateUpdate) { continuation.yield(update) }

  /// Ends the stream.
  public func finish() { continuation.finish() }
}

/// A ``RuleApplier`` that records calls and fails on request. For tests.
public final class FakeRuleApplier: RuleApplier {
  /// One recorded call.
  public struct Call: Sendable {
    public var ruleset: Ruleset
    public var full: Bool
    /// The clock's time at the call, if the fake was given a clock.
    public var at: Duration?
    /// Whether the call threw.
    public var failed: Bool
  }

  /// The error a failing call throws.
  public struct InjectedFailure: Error, Sendable, CustomStringConvertible {
    public var description: String { "injected apply failure" }
  }

  private struct State {
    var calls: [Call] = []
    var failNext = 0
    var failAlways = false
    var waiters: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
  }

  private let state = Mutex(State())
  private let clock: (any SyncClock)?

  public init(clock: (any SyncClock)? = nil) {
    self.clock = clock
  }

  /// Every call so far.
  public var calls: [Call] { state.withLock { $0.calls } }

  /// Makes the next `n` calls throw.
  public func failNext(_ n: Int) { state.withLock { $0.failNext = n } }

  /// Makes every call throw until set back to false.
  public func setFailing(_ failing: Bool) { state.withLock { $0.failAlways = failing } }

  /// Returns once at least `count` calls have been made.
  public func waitForCalls(_ count: Int) async {
    await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
      let done = state.withLock { s -> Bool in
        if s.calls.count >= count { return true }
        s.waiters.append((count, c))
        return false
      }
      if done { c.resume() }
    }
  }

  public func apply(_ ruleset: Ruleset, full: Bool) async throws -> ApplyResult {
    let at = clock?.now
    let (fail, ready) = state.withLock { s -> (Bool, [CheckedContinuation<Void, Never>]) in
      var fail = s.failAlways
      if s.failNext > 0 {
        s.failNext -= 1
        fail = true
      }
      s.calls.append(Call(ruleset: ruleset, full: full, at: at, failed: fail))
      let n = s.calls.count
      let ready = s.waiters.filter { $0.count <= n }.map(\.continuation)
      s.waiters.removeAll { $0.count <= n }
      return (fail, ready)
    }
    for c in ready { c.resume() }
    if fail { throw InjectedFailure() }
    return ApplyResult(kind: full ? .full : .partial, messages: ruleset.tables.count)
  }
}
