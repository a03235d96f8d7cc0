import ArgumentParser
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

struct Run: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Program this node: once (--once), or as a daemon that follows the API or the manifests.")

  @Option(name: .customLong("manifests"), help: "Manifest files or directories (YAML or JSON).")
  var manifests: [String] = []

  @Flag(help: "Apply one sync and exit (0 on success).")
  var once = false

  @OptionGroup var node: NodeOptions

  @Option(help: "Network namespace file to operate in (default: the current namespace).")
  var netns: String?

  func validate() throws {
    if manifests.isEmpty { throw ValidationError("--manifests is required") }
    if !once { throw ValidationError("only --once is available in this build") }
  }

  func run() throws {
    try OneShot.apply(manifests: manifests, config: node.config(), namespace: netns)
  }
}
