import ArgumentParser
import KubeModel
import KubeWatch
import Logging
import ProxyDaemon
import NFTNetlink
import NFTables
import ProxyCore

/// The tables nftproxy owns, for cleanup and read-back.
func ownedTables(_ name: String) -> [(TableFamily, String)] {
  [(.ip, name), (.ip6, name)]
}

/// `nftproxy run --once` applies here; the daemon mode lives in `Run` (see Daemon.swift).
enum OneShot {
  static func apply(manifests: [String], config: ProxyConfig, namespace: String?) throws {
    let out = try Pipeline.compile(manifests: manifests, config: config)
    printWarnings(out.warnings)
    let backend = try NFTBackend(namespacePath: namespace)
    let report = try backend.sync(out.ruleset)
    printError("nftproxy: \(report)")
    StaleUDPCleanup.afterOneShot(out.resolved, namespace: namespace)
  }
}

struct DiffCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "diff",
    abstract: "Show what a sync would change in the kernel now (chains, sets, elements); changes nothing.")

  @Option(name: .customLong("manifests"), help: "Manifest files or directories (YAML or JSON).")
  var manifests: [String] = []

  @OptionGroup var node: NodeOptions

  @Option(help: "Network namespace file to operate in (default: the current namespace).")
  var netns: String?

  func validate() throws {
    if manifests.isEmpty { throw ValidationError("--manifests is required") }
  }

  func run() throws {
    let out = try Pipeline.compile(manifests: manifests, config: node.config())
    printWarnings(out.warnings)
    let backend = try NFTBackend(namespacePath: netns)
    let diff = try backend.diffAgainstKernel(out.ruleset)
    print(diff.isEmpty ? "no changes" : diff.description)
  }
}

struct Cleanup: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Delete nftproxy's own tables (ip and ip6 nftproxy) and nothing else.")

  @Option(help: "Network namespace file to operate in (default: the current namespace).")
  var netns: String?

  func run() throws {
    let backend = try NFTBackend(namespacePath: netns)
    try backend.cleanup(tables: ownedTables(ProxyConfig().tableName))
    printError("nftproxy: removed tables ip nftproxy and ip6 nftproxy (if present)")
  }
}

struct Run: AsyncParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Program this node: once (--once), or as a daemon that follows the API or the manifests.")

  @Option(name: .customLong("manifests"), help: "Manifest files or directories (YAML or JSON), re-read when they change.")
  var manifests: [String] = []

  @Option(help: "kubeconfig file; without it and without --manifests, the in-cluster service account is used.")
  var kubeconfig: String?

  @Flag(help: "Apply one sync and exit (0 on success).")
  var once = false

  @OptionGroup var node: NodeOptions

  @Option(help: "At most one sync per this many seconds.") var minSyncPeriod: Double = 1
  @Option(help: "A full resync (repairing drift) at least every this many seconds.") var syncPeriod: Double = 30
  @Option(help: "host:port of /healthz and /livez; empty disables.") var healthzBindAddress = "0.0.0.0:10256"
  @Option(help: "host:port of /metrics; empty disables.") var metricsBindAddress = "127.0.0.1:10249"
  @Option(name: [.short, .customLong("v")], help: "Log verbosity: 0 info, 1-3 debug, 4+ trace.") var verbosity = 0

  @Option(help: "Network namespace file to operate in (default: the current namespace).")
  var netns: String?

  func validate() throws {
    if once && manifests.isEmpty {
      throw ValidationError("--once needs --manifests")
    }
    if !manifests.isEmpty && kubeconfig != nil {
      throw ValidationError("use either --manifests or --kubeconfig")
    }
    if minSyncPeriod < 0 || syncPeriod <= 0 {
      throw ValidationError("--min-sync-period must be >= 0 and --sync-period > 0")
    }
  }

  func run() async throws {
    let config = try node.config()
    if once {
      try OneShot.apply(manifests: manifests, config: config, namespace: netns)
      return
    }
    var logger = Logger(label: "nftproxy")
    logger.logLevel = verbosity >= 4 ? .trace : verbosity >= 1 ? .debug : .info
    let source: any StateSource
    if !manifests.isEmpty {
      let initial = try ManifestLoader.load(paths: manifests)
      printWarnings(initial.warnings)
      source = ManifestStateSource(paths: manifests, initial: initial.state, logger: logger)
    } else {
      source = try APIStateSource(
        config: try KubeConfig.resolve(kubeconfig: kubeconfig), nodeName: config.hostname,
        logger: logger)
    }
    let options = DaemonOptions(
      sync: SyncOptions(
        minSyncPeriod: .milliseconds(Int(minSyncPeriod * 1000)),
        syncPeriod: .milliseconds(Int(syncPeriod * 1000))),
      healthzBindAddress: healthzBindAddress, metricsBindAddress: metricsBindAddress)
    var cleaner: NetlinkStaleFlowCleaner?
    do {
      cleaner = try NetlinkStaleFlowCleaner(namespacePath: netns)
    } catch {
      logger.warning("no UDP conntrack cleanup: \(error)")
    }
    let daemon = try Daemon(
      config: config, options: options, source: source,
      applier: try NetlinkApplier(namespacePath: netns, logger: logger),
      staleFlowCleaner: cleaner, logger: logger)
    logger.info("nftproxy running for node \(config.hostname)")
    try await daemon.serviceGroup().run()
  }
}
