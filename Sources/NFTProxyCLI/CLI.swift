import ArgumentParser
import IPAddr
import KubeModel
import NFTables
import ProxyCore

#if canImport(Glibc)
  import Glibc
#endif

/// The `nftproxy` command.
public struct NFTProxyCommand: AsyncParsableCommand {
  public static let configuration = CommandConfiguration(
    commandName: "nftproxy",
    abstract: "A kube-proxy replacement that programs nftables over netlink.",
    subcommands: [Dump.self, Run.self, DiffCommand.self, Cleanup.self, Bench.self]
  )

  public init() {}

  /// Parses the process arguments and runs the chosen subcommand (async ones awaited).
  public static func runMain(_ arguments: [String]? = nil) async {
    do {
      try await execute(arguments)
    } catch {
      exit(withError: error)
    }
  }

  /// Parses `arguments` and runs the chosen subcommand, throwing instead of exiting (for tests
  /// that run `nftproxy` in-process).
  public static func execute(_ arguments: [String]?) async throws {
    var command = try parseAsRoot(arguments)
    if var asyncCommand = command as? AsyncParsableCommand {
      try await asyncCommand.run()
    } else {
      try command.run()
    }
  }
}

/// Node and cluster flags shared by every subcommand that compiles rules (kube-proxy's names).
public struct NodeOptions: ParsableArguments {
  @Option(help: "This node's name; endpoints on it are local.")
  public var hostnameOverride: String?

  @Option(name: .customLong("node-ip"), help: "A node IP (repeatable, IPv4 and/or IPv6).")
  public var nodeIPs: [String] = []

  @Option(
    name: .customLong("cluster-cidr"), help: "Pod network CIDR (repeatable or comma-separated).")
  public var clusterCIDRs: [String] = []

  @Option(name: .customLong("service-cidr"), help: "Service CIDR (repeatable or comma-separated).")
  public var serviceCIDRs: [String] = []

  @Option(
    name: .customLong("nodeport-addresses"),
    help: "CIDRs of local addresses that accept NodePorts, or 'primary' (default).")
  public var nodePortAddresses: [String] = []

  @Flag(help: "Masquerade all traffic to ClusterIPs.")
  public var masqueradeAll = false

  @Option(help: "How pod traffic is recognized: ClusterCIDR or NodeCIDR.")
  public var detectLocalMode: String = "ClusterCIDR"

  public init() {}

  static func split(_ values: [String]) -> [String] {
    values.flatMap { $0.split(separator: ",").map { String($0).trimmingCharacters() } }
      .filter { !$0.isEmpty }
  }

  /// The configuration these flags describe; the hostname defaults to the machine's.
  public func config() throws -> ProxyConfig {
    var cfg = ProxyConfig()
    cfg.hostname = hostnameOverride ?? Self.machineHostname()
    for text in Self.split(nodeIPs) {
      guard let ip = IPAddress(text) else {
        throw ValidationError("--node-ip: '\(text)' is not an IP address")
      }
      cfg.nodeIPs.append(ip)
    }
    cfg.clusterCIDRs = try Self.cidrs(clusterCIDRs, flag: "--cluster-cidr")
    cfg.serviceCIDRs = try Self.cidrs(serviceCIDRs, flag: "--service-cidr")
    let np = Self.split(nodePortAddresses)
    if np.isEmpty || np == ["primary"] {
      cfg.nodePortAddresses = .primary
    } else {
      cfg.nodePortAddresses = .cidrs(try Self.cidrs(np, flag: "--nodeport-addresses"))
    }
    cfg.masqueradeAll = masqueradeAll
    guard let mode = DetectLocalMode(rawValue: detectLocalMode) else {
      throw ValidationError(
        "--detect-local-mode: '\(detectLocalMode)' is not one of ClusterCIDR, NodeCIDR")
    }
    cfg.detectLocalMode = mode
    return cfg
  }

  static func cidrs(_ values: [String], flag: String) throws -> [CIDR] {
    try split(values).map {
      guard let c = CIDR($0) else { throw ValidationError("\(flag): '\($0)' is not a CIDR") }
      return c
    }
  }

  static func machineHostname() -> String {
    var buf = [CChar](repeating: 0, count: 256)
    guard gethostname(&buf, buf.count) == 0 else { return "" }
    let bytes = buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    return String(decoding: bytes, as: UTF8.self).lowercased()
  }
}

/// Loads manifests and compiles them: the pure pipeline every subcommand shares.
public enum Pipeline {
  public struct Output: Sendable {
    public var ruleset: Ruleset
    public var resolved: ResolvedCluster
    public var warnings: [String]
  }

  public static func compile(manifests: [String], config: ProxyConfig) throws -> Output {
    let loaded = try ManifestLoader.load(paths: manifests)
    return compile(state: loaded.state, config: config, warnings: loaded.warnings)
  }

  public static func compile(state: ClusterState, config: ProxyConfig, warnings: [String] = [])
    -> Output
  {
    let resolved = Resolver.resolve(state, config: config)
    let ruleset = Compiler.compile(resolved, config: config)
    return Output(ruleset: ruleset, resolved: resolved, warnings: warnings + resolved.warnings)
  }
}

func printWarnings(_ warnings: [String]) {
  for w in warnings { printError("warning: \(w)") }
}

func printError(_ text: String) {
  let line = Array((text + "\n").utf8)
  _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

struct Dump: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Print the rule set for the given manifests as an `nft -f` script.")

  @Option(name: .customLong("manifests"), help: "Manifest files or directories (YAML or JSON).")
  var manifests: [String] = []

  @OptionGroup var node: NodeOptions

  func validate() throws {
    if manifests.isEmpty { throw ValidationError("--manifests is required") }
  }

  func run() throws {
    let out = try Pipeline.compile(manifests: manifests, config: node.config())
    printWarnings(out.warnings)
    print(NFTText.render(out.ruleset), terminator: "")
  }
}

extension String {
  func trimmingCharacters() -> String {
    var s = Substring(self)
    while s.first?.isWhitespace == true { s.removeFirst() }
    while s.last?.isWhitespace == true { s.removeLast() }
    return String(s)
  }
}
