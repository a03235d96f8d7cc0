import IPAddr
import Logging
import ProxyCore
import Synchronization

/// Deletes conntrack entries of UDP flows that a sync left on endpoints that no longer serve.
/// The ctnetlink cleaner is adapted to this.
///
/// Contract: called after a successful sync, one call per IP family that `filter` covers, never
/// concurrently. A failure leaves the entries in place; the sync loop then checks every UDP
/// frontend after the next sync.
public protocol StaleFlowCleaner: Sendable {
  /// Deletes the UDP entries of `family` that `filter` marks stale; returns how many.
  func clean(_ filter: StaleUDPFilter, family: IPAddress.Family) async throws -> Int
}

/// A ``StaleFlowCleaner`` that records its calls and fails on request. For tests.
public final class FakeStaleFlowCleaner: StaleFlowCleaner {
  /// One recorded call.
  public struct Call: Sendable {
    public var filter: StaleUDPFilter
    public var family: IPAddress.Family
    public var failed: Bool
  }

  /// The error a failing call throws.
  public struct InjectedFailure: Error, Sendable, CustomStringConvertible {
    public var description: String { "injected conntrack cleanup failure" }
  }

  private struct State {
    var calls: [Call] = []
    var failNext = 0
  }

  private let state = Mutex(State())
  private let deletes: Int

  /// - Parameter deletes: what every successful call reports as deleted.
  public init(deletes: Int = 0) {
    self.deletes = deletes
  }

  public var calls: [Call] { state.withLock { $0.calls } }

  /// Makes the next `n` calls throw.
  public func failNext(_ n: Int) { state.withLock { $0.failNext = n } }

  public func clean(_ filter: StaleUDPFilter, family: IPAddress.Family) async throws -> Int {
    let fail = state.withLock { s -> Bool in
      let fail = s.failNext > 0
      if fail { s.failNext -= 1 }
      s.calls.append(Call(filter: filter, family: family, failed: fail))
      return fail
    }
    if fail { throw InjectedFailure() }
    return deletes
  }
}

extension SyncLoop {
  /// Runs the UDP conntrack cleanup after a successful sync from `previous` (nil: check every
  /// UDP frontend) to `current`. Returns whether it completed; failures are logged only.
  func cleanStaleFlows(
    _ cleaner: any StaleFlowCleaner, previous: ResolvedCluster?, current: ResolvedCluster
  ) async -> Bool {
    let filter = StaleUDPFlows.filter(previous: previous, current: current)
    var complete = true
    for family in filter.families.sorted() {
      let start = clock.now
      do {
        let deleted = try await cleaner.clean(filter, family: family)
        let elapsed = clock.now - start
        metrics?.recordConntrackCleanup(family: family, duration: elapsed, deleted: deleted)
        let meta: Logger.Metadata = [
          "ipFamily": "\(family.rawValue)", "frontends": "\(filter.count)",
          "deleted": "\(deleted)", "seconds": "\(elapsed.seconds)",
          "scope": "\(previous == nil ? "all" : "changed")",
        ]
        if deleted > 0 {
          logger.info("deleted stale UDP conntrack entries", metadata: meta)
        } else {
          logger.debug("no stale UDP conntrack entries", metadata: meta)
        }
      } catch {
        complete = false
        logger.error(
          "UDP conntrack cleanup failed; the rules are in place, cleanup is retried after the next sync",
          metadata: ["ipFamily": "\(family.rawValue)", "error": "\(error)"])
      }
    }
    return complete
  }
}
