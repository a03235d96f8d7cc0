import Foundation
import KubeModel
import Logging
import NFTables
import ProxyCore

/// Timing of the sync loop.
public struct SyncOptions: Sendable, Equatable {
  /// At most one sync per this period (kube-proxy's `--min-sync-period`, default 1 s).
  public var minSyncPeriod: Duration
  /// A full resync at least this often, repairing drift (`--sync-period`, default 30 s).
  public var syncPeriod: Duration
  /// First retry delay after a failed sync; doubles with every further failure.
  public var initialBackoff: Duration
  /// Upper bound of the retry delay.
  public var maxBackoff: Duration

  public init(
    minSyncPeriod: Duration = .seconds(1), syncPeriod: Duration = .seconds(30),
    initialBackoff: Duration = .seconds(1), maxBackoff: Duration = .seconds(30)
  ) {
    self.minSyncPeriod = minSyncPeriod
    self.syncPeriod = syncPeriod
    self.initialBackoff = initialBackoff
    self.maxBackoff = maxBackoff
  }

  /// How long a queued change may wait before the proxy reports unhealthy: 2 × syncPeriod, as
  /// kube-proxy.
  public var healthTimeout: Duration { syncPeriod * 2 }

  /// The retry delay after `failures` consecutive failures (≥ 1).
  public func backoff(afterFailures failures: Int) -> Duration {
    var d = initialBackoff
    var n = 1
    while n < failures && d < maxBackoff {
      d = d * 2
      n += 1
    }
    return max(min(d, maxBackoff), minSyncPeriod)
  }
}

/// The result of one successful sync, handed to observers (health-check node ports).
public struct SyncSnapshot: Sendable {
  /// The cluster view the rules were computed from.
  public var state: ClusterState
  /// What the resolver made of it for this node.
  public var resolved: ResolvedCluster
  /// Whether the sync was full.
  public var full: Bool
  public var result: ApplyResult
}

/// Counters and times of the sync loop (monotonic times from its ``SyncClock``).
public struct SyncStatus: Sendable, Equatable {
  /// Whether the first (complete) cluster view has arrived.
  public var hasState = false
  /// Successful syncs, and how many of them were full.
  public var syncs = 0
  public var fullSyncs = 0
  /// Failed syncs in total, and since the last success.
  public var failures = 0
  public var consecutiveFailures = 0
  public var lastError: String?
  public var lastResult: ApplyResult?
  public var lastAttemptAt: Duration?
  public var lastSuccessAt: Duration?
  public var lastFullSyncAt: Duration?
  /// Whether changes are waiting for a sync.
  public var pending = false
  /// When the next full sync is forced (after a failure or at start).
  public var nextSyncFull = true
  /// When the loop will sync next; nil while it waits for the first state.
  public var nextSyncAt: Duration?
}

/// Errors of ``SyncLoop/syncOnce(_:)``.
public enum SyncLoopError: Error, Sendable {
  /// Another sync is running.
  case busy
}

/// Turns cluster views into programmed rules.
///
/// Updates coalesce: only the newest view matters, and at most one sync runs per
/// `minSyncPeriod`. A full sync happens first, every `syncPeriod`, and after every failure;
/// other syncs are partial (the applier sends only the difference). A failed sync leaves the
/// previous rules (the applier is atomic) and is retried with exponential backoff.
///
/// Run it with ``run(source:)``; feed it through the source or ``enqueue(_:)``.
public actor SyncLoop {
  public nonisolated let config: ProxyConfig
  public nonisolated let options: SyncOptions
  /// The health state this loop keeps current.
  public nonisolated let health: ProxyHealth
  nonisolated let applier: any RuleApplier
  nonisolated let clock: any SyncClock
  nonisolated let metrics: ProxyMetrics?
  nonisolated let logger: Logger
  nonisolated let staleFlowCleaner: (any StaleFlowCleaner)?

  /// The newest view received.
  private var desired: ClusterState?
  /// Whether `desired` has changes no successful sync has covered.
  private var dirty = false
  /// Arrival times of uncovered changes (bounded), and counts for the pending gauges.
  private var arrivals: [Duration] = []
  private var pendingServiceChanges = 0
  private var pendingEndpointChanges = 0
  private var needFull = true
  private var lastSyncStart: Duration?
  private var lastFullSync: Duration?
  private var retryAt: Duration?
  private var syncing = false
  private var stats = SyncStatus()
  private var latest: SyncSnapshot?
  private var observers: [Int: AsyncStream<SyncSnapshot>.Continuation] = [:]
  private var nextObserver = 0
  private var wake: AsyncStream<Void>.Continuation?
  private var lastWarnings: [String] = []
  /// Whether the last conntrack cleanup failed, so the next one checks every UDP frontend.
  private var staleFlowsPending = false

  static let maxTrackedArrivals = 4096

  /// - Parameters:
  ///   - config: node and cluster settings for the resolver and compiler.
  ///   - applier: programs the compiled rule set.
  ///   - health: the health to keep current; a new one with `options.healthTimeout` if nil.
  ///   - metrics: where to record kube-proxy's metrics; none if nil.
  ///   - staleFlowCleaner: deletes stale UDP conntrack entries after each successful sync (the
  ///     first sync and full syncs check every UDP frontend, others only changed ones); none if
  ///     nil.
  public init(
    config: ProxyConfig, applier: any RuleApplier, options: SyncOptions = SyncOptions(),
    clock: any SyncClock = ContinuousSyncClock(), health: ProxyHealth? = nil,
    metrics: ProxyMetrics? = nil, staleFlowCleaner: (any StaleFlowCleaner)? = nil,
    logger: Logger = Logger(label: "nftproxy.sync")
  ) {
    self.config = config
    self.applier = applier
    self.options = options
    self.clock = clock
    self.health = health ?? ProxyHealth(timeout: options.healthTimeout, clock: clock)
    self.metrics = metrics
    self.staleFlowCleaner = staleFlowCleaner
    self.logger = logger
  }

  // MARK: Input

  /// Queues a cluster view. It replaces any view not yet synced.
  public func enqueue(_ update: StateUpdate) {
    let now = clock.now
    if desired == nil {
      logger.info(
        "initial cluster state received",
        metadata: [
          "services": "\(update.state.services.count)",
          "endpointSlices": "\(update.state.endpointSlices.count)",
        ])
    }
    desired = update.state
    stats.hasState = true
    dirty = true
    if arrivals.count < Self.maxTrackedArrivals { arrivals.append(now) }
    pendingServiceChanges += update.serviceChanges
    pendingEndpointChanges += update.endpointChanges
    health.queued(at: now)
    if let metrics {
      metrics.serviceChanges.increment(by: Int64(max(0, update.serviceChanges)))
      metrics.endpointChanges.increment(by: Int64(max(0, update.endpointChanges)))
      metrics.lastQueuedTimestamp.record(Date().timeIntervalSince1970)
      updatePendingGauges()
    }
    wake?.yield()
  }

  // MARK: Output

  /// The resolver's result of the last successful sync.
  public var resolved: ResolvedCluster? { latest?.resolved }

  /// The last successful sync.
  public var lastSnapshot: SyncSnapshot? { latest }

  /// Counters, times and the schedule.
  public var status: SyncStatus {
    var s = stats
    s.pending = dirty
    s.nextSyncFull = needFull || retryAt != nil
    s.nextSyncAt = plan().map { $0.at }
    return s
  }

  /// Every successful sync from now on (the newest one first, if any); only the newest is
  /// buffered for a slow consumer.
  public func snapshots() -> AsyncStream<SyncSnapshot> {
    let (stream, continuation) = AsyncStream.makeStream(
      of: SyncSnapshot.self, bufferingPolicy: .bufferingNewest(1))
    let id = nextObserver
    nextObserver += 1
    observers[id] = continuation
    if let latest { continuation.yield(latest) }
    continuation.onTermination = { [weak self] _ in
      Task { await self?.removeObserver(id) }
    }
    return stream
  }

  private func removeObserver(_ id: Int) {
    observers[id] = nil
  }

  // MARK: The loop

  /// Runs until the task is cancelled: consumes `source` (if any) and syncs on schedule.
  /// Never removes rules, also not when it returns.
  public func run(source: (any StateSource)? = nil) async {
    let (wakeups, wakeContinuation) = AsyncStream.makeStream(
      of: Void.self, bufferingPolicy: .bufferingNewest(1))
    wake = wakeContinuation
    defer {
      wake = nil
      wakeContinuation.finish()
    }
    let forwarder: Task<Void, Never>? = source.map { source in
      let stream = source.states()
      return Task {
        for await update in stream { self.enqueue(update) }
      }
    }
    defer { forwarder?.cancel() }
    let clock = self.clock
    var iterator = wakeups.makeAsyncIterator()
    while !Task.isCancelled {
      let now = clock.now
      guard let next = plan() else {
        // No state yet: wait for one.
        if await iterator.next() == nil { break }
        continue
      }
      if next.at <= now {
        _ = await sync(full: next.full || fullResyncDue(at: now))
        continue
      }
      let timer = Task {
        do {
          try await clock.sleep(until: next.at)
          wakeContinuation.yield()
        } catch {}
      }
      let woken: Void? = await iterator.next()
      timer.cancel()
      if woken == nil { break }
    }
  }

  /// Applies `state` with one full sync now (for `--once`), recording it like any other sync.
  /// Throws the applier's error when it fails.
  @discardableResult
  public func syncOnce(_ state: ClusterState) async throws -> ApplyResult {
    guard !syncing else { throw SyncLoopError.busy }
    enqueue(StateUpdate.diff(from: desired, to: state))
    return try await sync(full: true).get()
  }

  /// When the next sync is due and whether it must be full; nil before the first state.
  private func plan() -> (at: Duration, full: Bool)? {
    guard desired != nil else { return nil }
    let earliest = lastSyncStart.map { $0 + options.minSyncPeriod } ?? .zero
    if let retryAt { return (max(retryAt, earliest), true) }
    let resyncAt = lastFullSync.map { $0 + options.syncPeriod } ?? .zero
    if dirty || needFull { return (earliest, needFull || resyncAt <= earliest) }
    return (max(resyncAt, earliest), true)
  }

  private func fullResyncDue(at now: Duration) -> Bool {
    guard let lastFullSync else { return true }
    return lastFullSync + options.syncPeriod <= now
  }

  // MARK: One sync

  private func sync(full: Bool) async -> Result<ApplyResult, any Error> {
    guard let state = desired, !syncing else { return .failure(SyncLoopError.busy) }
    syncing = true
    defer { syncing = false }
    let start = clock.now
    lastSyncStart = start
    stats.lastAttemptAt = start
    // Take the pending changes; what arrives during the sync stays pending.
    let takenArrivals = arrivals
    let takenDirty = dirty
    let takenServiceChanges = pendingServiceChanges
    let takenEndpointChanges = pendingEndpointChanges
    arrivals = []
    dirty = false
    pendingServiceChanges = 0
    pendingEndpointChanges = 0

    let resolved = Resolver.resolve(state, config: config)
    let ruleset = Compiler.compile(resolved, config: config)
    if resolved.warnings != lastWarnings {
      for w in resolved.warnings { logger.warning("resolver: \(w)") }
      lastWarnings = resolved.warnings
    }

    do {
      let result = try await applier.apply(ruleset, full: full)
      let end = clock.now
      let wasFull = full || result.kind == .full
      needFull = false
      retryAt = nil
      if wasFull { lastFullSync = start }
      stats.syncs += 1
      if wasFull {
        stats.fullSyncs += 1
        stats.lastFullSyncAt = start
      }
      stats.consecutiveFailures = 0
      stats.lastError = nil
      stats.lastResult = result
      stats.lastSuccessAt = end
      health.updated(pendingSince: arrivals.first)
      recordSuccess(
        start: start, end: end, full: wasFull, arrivals: takenArrivals, resolved: resolved)
      var meta: Logger.Metadata = [
        "kind": "\(full ? "full" : "partial")", "applied": "\(result.kind.rawValue)",
        "messages": "\(result.messages)", "servicePorts": "\(resolved.servicePorts.count)",
        "seconds": "\((end - start).seconds)",
      ]
      if let detail = result.detail { meta["detail"] = "\(detail)" }
      logger.info("synced rules", metadata: meta)
      let snapshot = SyncSnapshot(state: state, resolved: resolved, full: wasFull, result: result)
      let previous = latest?.resolved
      latest = snapshot
      for o in observers.values { o.yield(snapshot) }
      if let staleFlowCleaner {
        let since = wasFull || staleFlowsPending ? nil : previous
        let complete = await cleanStaleFlows(staleFlowCleaner, previous: since, current: resolved)
        staleFlowsPending = !complete
      }
      return .success(result)
    } catch {
      let end = clock.now
      // The previous rules are still in place; put the changes back and retry, full.
      arrivals = Array((takenArrivals + arrivals).prefix(Self.maxTrackedArrivals))
      dirty = dirty || takenDirty
      pendingServiceChanges += takenServiceChanges
      pendingEndpointChanges += takenEndpointChanges
      needFull = true
      stats.failures += 1
      stats.consecutiveFailures += 1
      stats.lastError = "\(error)"
      let delay = options.backoff(afterFailures: stats.consecutiveFailures)
      retryAt = end + delay
      health.setPending(since: arrivals.first)
      if let metrics {
        metrics.syncFailures.increment()
        updatePendingGauges()
      }
      logger.error(
        "sync failed; previous rules stay in place",
        metadata: [
          "kind": "\(full ? "full" : "partial")", "error": "\(error)",
          "consecutiveFailures": "\(stats.consecutiveFailures)",
          "retryInSeconds": "\(delay.seconds)",
        ])
      return .failure(error)
    }
  }

  private func recordSuccess(
    start: Duration, end: Duration, full: Bool, arrivals: [Duration], resolved: ResolvedCluster
  ) {
    guard let metrics else { return }
    let elapsed = (end - start).nanoseconds
    metrics.syncDuration.recordNanoseconds(elapsed)
    (full ? metrics.fullSyncDuration : metrics.partialSyncDuration).recordNanoseconds(elapsed)
    for a in arrivals {
      metrics.networkProgrammingDuration.recordNanoseconds((end - a).nanoseconds)
    }
    metrics.lastSyncTimestamp.record(Date().timeIntervalSince1970)
    let counts = NoLocalEndpoints(resolved)
    metrics.noLocalEndpointsInternal.record(counts.internal)
    metrics.noLocalEndpointsExternal.record(counts.external)
    updatePendingGauges()
  }

  private func updatePendingGauges() {
    guard let metrics else { return }
    metrics.serviceChangesPending.record(pendingServiceChanges)
    metrics.endpointChangesPending.record(pendingEndpointChanges)
  }
}

/// kube-proxy's `sync_proxy_rules_no_local_endpoints_total`: service ports (per IP family) with
/// a Local traffic policy and no local endpoints.
public struct NoLocalEndpoints: Sendable, Equatable {
  /// internalTrafficPolicy Local.
  public var `internal`: Int
  /// externalTrafficPolicy Local on an externally reachable service port.
  public var external: Int

  public init(_ cluster: ResolvedCluster) {
    var i = 0
    var e = 0
    for sp in cluster.servicePorts where sp.localEndpoints.isEmpty {
      if sp.internalPolicyLocal { i += 1 }
      if sp.effectiveExternalPolicyLocal { e += 1 }
    }
    self.internal = i
    self.external = e
  }
}
