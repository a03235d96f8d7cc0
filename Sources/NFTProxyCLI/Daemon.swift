import Foundation
import KubeModel
import KubeWatch
import Logging
import NFTNetlink
import NFTables
import ProxyCore
import ProxyDaemon
import ServiceLifecycle

/// The netlink backend as the daemon's ``RuleApplier``: one backend, used by one sync at a time.
final class NetlinkApplier: RuleApplier, @unchecked Sendable {
  private let backend: NFTBackend
  private let lock = NSLock()
  private let logger: Logger

  init(namespacePath: String?, logger: Logger) throws {
    backend = try NFTBackend(namespacePath: namespacePath)
    self.logger = logger
  }

  func apply(_ ruleset: Ruleset, full: Bool) async throws -> ApplyResult {
    let report = try lock.withLock { try backend.sync(ruleset, full: full) }
    logger.debug("\(report)")
    switch report.kind {
    case .full:
      return ApplyResult(kind: .full, messages: report.messageCount, detail: report.reason)
    case .partial:
      return ApplyResult(kind: .partial, messages: report.messageCount, detail: report.reason)
    case .none: return ApplyResult(kind: .none, detail: report.reason)
    }
  }
}

/// Cluster views from the Kubernetes API (list + watch), with per-update change counts.
struct APIStateSource: StateSource {
  let watcher: ClusterWatcher
  let client: KubeClient
  let stream: AsyncStream<StateUpdate>
  let continuation: AsyncStream<StateUpdate>.Continuation

  init(config: KubeConfig, nodeName: String, logger: Logger) throws {
    client = try KubeClient(config: config, logger: logger)
    watcher = ClusterWatcher(client: client, nodeName: nodeName, logger: logger)
    (stream, continuation) = AsyncStream.makeStream(
      of: StateUpdate.self, bufferingPolicy: .bufferingNewest(1))
  }

  func states() -> AsyncStream<StateUpdate> { stream }

  func run() async throws {
    let forward = Task { [watcher, continuation] in
      var services = 0
      var endpoints = 0
      for await snap in watcher.snapshots {
        continuation.yield(
          StateUpdate(
            state: snap.state, serviceChanges: snap.serviceChanges - services,
            endpointChanges: snap.endpointChanges - endpoints))
        services = snap.serviceChanges
        endpoints = snap.endpointChanges
      }
    }
    defer { forward.cancel() }
    do {
      try await watcher.run()
    } catch {
      try? await client.shutdown()
      throw error
    }
    try? await client.shutdown()
  }
}

/// Cluster views from manifest files, re-read when any of them changes. A file that becomes
/// invalid is reported and the last good view stays in force.
struct ManifestStateSource: StateSource {
  let paths: [String]
  let initial: ClusterState
  let logger: Logger
  let interval: Duration
  let stream: AsyncStream<StateUpdate>
  let continuation: AsyncStream<StateUpdate>.Continuation

  init(paths: [String], initial: ClusterState, logger: Logger, interval: Duration = .seconds(1)) {
    self.paths = paths
    self.initial = initial
    self.logger = logger
    self.interval = interval
    (stream, continuation) = AsyncStream.makeStream(
      of: StateUpdate.self, bufferingPolicy: .bufferingNewest(1))
  }

  func states() -> AsyncStream<StateUpdate> { stream }

  /// Modification time and size of every manifest file: a cheap change detector.
  static func fingerprint(_ paths: [String]) -> [String] {
    guard let files = try? ManifestLoader.manifestFiles(paths: paths) else { return ["error"] }
    return files.map { f in
      let attrs = try? FileManager.default.attributesOfItem(atPath: f)
      let m = (attrs?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
      let size = (attrs?[.size] as? Int) ?? -1
      return "\(f) \(m) \(size)"
    }
  }

  func run() async throws {
    var last = initial
    continuation.yield(StateUpdate.diff(from: nil, to: initial))
    var print = Self.fingerprint(paths)
    while true {
      try await Task.sleep(for: interval)
      let now = Self.fingerprint(paths)
      if now == print { continue }
      print = now
      do {
        let loaded = try ManifestLoader.load(paths: paths)
        for w in loaded.warnings { logger.warning("\(w)") }
        if loaded.state != last {
          continuation.yield(StateUpdate.diff(from: last, to: loaded.state))
          last = loaded.state
        }
      } catch {
        logger.error("manifests are invalid; keeping the last good rules: \(error)")
      }
    }
  }
}
