import ArgumentParser
import Foundation
import KubeModel
import NFTNetlink
import NFTables
import ProxyCore
import Synthetic
import IPAddr
#if canImport(Glibc)
  import Glibc
#endif

/// `nftproxy bench`: times each phase on a synthetic cluster.
struct Bench: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Time each phase (decode, resolve, compile, render, encode, apply) on a synthetic cluster.")

  @Option(help: "Number of Services.") var services = 10_000
  @Option(help: "Ready endpoints per Service.") var endpointsPerService = 10
  @Option(help: "Every Nth service is a NodePort (0: none).") var nodePortEvery = 10
  @Option(help: "Every Nth service is a LoadBalancer (0: none).") var loadBalancerEvery = 20
  @Option(help: "Every Nth service has ClientIP affinity (0: none).") var affinityEvery = 0
  @Flag(help: "Dual-stack services and endpoints.") var dualStack = false
  @Flag(help: "Also apply into a throwaway network namespace (root): full, one-endpoint partial, no-change syncs.")
  var apply = false
  @Option(help: "Repeat each timed phase this many times and report the median.") var repeats = 3
  @Flag(help: "Skip the manifest decode phase.") var skipDecode = false
  @Option(help: "Write the results as JSON to this file.") var json: String?
  @Option(help: "Write nftproxy's rule set as nft text to this file (for baselines).") var emitNft: String?
  @Option(help: "Write the kube-proxy-shaped rule set for the same cluster to this file (for baselines).")
  var emitKubeProxy: String?

  func run() throws {
    var gen = SyntheticCluster(services: services, endpointsPerService: endpointsPerService)
    gen.nodePortEvery = nodePortEvery
    gen.loadBalancerEvery = loadBalancerEvery
    gen.affinityEvery = affinityEvery
    gen.dualStack = dualStack
    let config = BenchSupport.config(dualStack: dualStack)
    let progress = Progress(total: apply ? 8 : 5)

    let state = progress.step("generate") { gen.generate() }
    let listJSON = skipDecode ? "" : progress.step("encode manifests as JSON (untimed setup)") { state.listJSON() }
    var results: [(String, Double)] = []
    if !skipDecode {
      results.append(("decode", try progress.timed("decode", repeats: repeats) {
        _ = try ManifestLoader.load(text: listJSON, file: "bench.json")
      }))
    }
    var resolved: ResolvedCluster? = nil
    results.append(("resolve", progress.timedNoThrow("resolve", repeats: repeats) {
      resolved = Resolver.resolve(state, config: config)
    }))
    var ruleset = Ruleset()
    results.append(("compile", progress.timedNoThrow("compile", repeats: repeats) {
      ruleset = Compiler.compile(resolved!, config: config)
    }))
    results.append(("render text", progress.timedNoThrow("render", repeats: repeats) {
      _ = NFTText.render(ruleset)
    }))
    results.append(("encode", try progress.timed("encode netlink batch", repeats: repeats) {
      _ = try NFTBackend.plan(from: nil, to: ruleset, full: true)
    }))
    if let emitNft { try NFTText.render(ruleset).write(toFile: emitNft, atomically: true, encoding: .utf8) }
    if let emitKubeProxy {
      try KubeProxyShape.render(state, clusterCIDR: SyntheticCluster.clusterCIDRs[0])
        .write(toFile: emitKubeProxy, atomically: true, encoding: .utf8)
    }
    if apply {
      results += try BenchSupport.applyPhases(ruleset: ruleset, state: state, config: config, progress: progress)
    }
    let rss = BenchSupport.peakRSSMiB()
    if let json {
      try BenchSupport.json(
        services: services, endpoints: endpointsPerService, dualStack: dualStack, phases: results, rss: rss
      ).write(toFile: json, atomically: true, encoding: .utf8)
    }
    print("services=\(services) endpoints/service=\(endpointsPerService) dual-stack=\(dualStack)")
    let chains = ruleset.tables.reduce(0) { $0 + $1.chains.count }
    let rules = ruleset.tables.reduce(0) { $0 + $1.chains.reduce(0) { $0 + $1.rules.count } }
    print("rule set: \(rules) rules in \(chains) chains")
    for (name, seconds) in results {
      print(name.padding(toLength: 40, withPad: " ", startingAt: 0) + String(format: "%12.2f ms", seconds * 1000))
    }
    print("peak RSS".padding(toLength: 40, withPad: " ", startingAt: 0) + String(format: "%12.1f MiB", rss))
  }
}

/// A progress display on stderr for long benchmark runs.
final class Progress {
  let total: Int
  var done = 0
  let start = Date()
  init(total: Int) { self.total = total }

  func note(_ text: String) {
    done += 1
    FileHandle.standardError.write(
      Data(String(format: "[%d/%d +%.1fs] %@\n", done, total, Date().timeIntervalSince(start), text as NSString).utf8))
  }

  func step<T>(_ name: String, _ body: () throws -> T) rethrows -> T {
    FileHandle.standardError.write(Data("… \(name)\n".utf8))
    let v = try body()
    return v
  }

  func timed(_ name: String, repeats: Int, _ body: () throws -> Void) throws -> Double {
    var times: [Double] = []
    for _ in 0..<max(1, repeats) {
      let t0 = DispatchTime.now().uptimeNanoseconds
      try body()
      times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
    }
    let m = times.sorted()[times.count / 2]
    note(String(format: "%@: %.2f ms (median of %d)", name as NSString, m * 1000, times.count))
    return m
  }

  func timedNoThrow(_ name: String, repeats: Int, _ body: () -> Void) -> Double {
    (try? timed(name, repeats: repeats, body)) ?? 0
  }
}

enum BenchSupport {
  static func config(dualStack: Bool) -> ProxyConfig {
    var c = ProxyConfig(hostname: SyntheticCluster.nodeName)
    c.clusterCIDRs = SyntheticCluster.clusterCIDRs.prefix(dualStack ? 2 : 1).compactMap { CIDR($0) }
    c.serviceCIDRs = SyntheticCluster.serviceCIDRs.prefix(dualStack ? 2 : 1).compactMap { CIDR($0) }
    return c
  }

  static func peakRSSMiB() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
  }

  static func json(services: Int, endpoints: Int, dualStack: Bool, phases: [(String, Double)], rss: Double)
    -> String
  {
    var p: [String] = []
    for (name, s) in phases { p.append("\"\(name)\": \(s * 1000)") }
    return """
      {"services": \(services), "endpoints_per_service": \(endpoints), "dual_stack": \(dualStack),
       "peak_rss_mib": \(rss), "phases_ms": {\(p.joined(separator: ", "))}}

      """
  }

  /// Full sync into a fresh network namespace, then a one-endpoint change, then no change.
  static func applyPhases(ruleset: Ruleset, state: ClusterState, config: ProxyConfig, progress: Progress)
    throws -> [(String, Double)]
  {
    let ns = try ThrowawayNamespace()
    let backend = try NFTBackend(namespacePath: ns.path)
    var out: [(String, Double)] = []
    var t0 = DispatchTime.now().uptimeNanoseconds
    let full = try backend.sync(ruleset, full: true)
    let fullS = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    progress.note(String(format: "apply full: %.1f ms (%d messages, %d bytes)", fullS * 1000, full.messageCount, full.byteCount))
    out.append(("apply full", fullS))

    // One endpoint of one service moves to a new address.
    var changed = state
    if var slice = changed.endpointSlices.first, var eps = slice.endpoints, !eps.isEmpty {
      eps[0].addresses = ["10.127.255.254"]
      slice.endpoints = eps
      changed.endpointSlices[0] = slice
    }
    t0 = DispatchTime.now().uptimeNanoseconds
    let newRuleset = Compiler.compile(Resolver.resolve(changed, config: config), config: config)
    let compileS = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    t0 = DispatchTime.now().uptimeNanoseconds
    let partial = try backend.sync(newRuleset)
    let partialS = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    progress.note(
      String(format: "apply partial (one endpoint): %.2f ms (%d messages, %d bytes); with recompile %.1f ms",
        partialS * 1000, partial.messageCount, partial.byteCount, (partialS + compileS) * 1000))
    out.append(("apply partial", partialS))
    out.append(("partial end-to-end (recompile + apply)", partialS + compileS))

    t0 = DispatchTime.now().uptimeNanoseconds
    _ = try backend.sync(newRuleset)
    let noneS = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
    progress.note(String(format: "apply no change: %.3f ms", noneS * 1000))
    out.append(("apply no change", noneS))
    return out
  }
}

/// A network namespace that lives as long as this value: created by `unshare` on a helper
/// thread, held open by a file descriptor, gone when the descriptor closes.
final class ThrowawayNamespace {
  let fd: Int32
  var path: String { "/proc/self/fd/\(fd)" }

  init() throws {
    let box = FDBox()
    let thread = Thread {
      if ThrowawayNamespace.unshareNet() == 0 {
        box.fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
      } else {
        box.errno = errno
      }
      box.done.signal()
    }
    thread.start()
    box.done.wait()
    guard box.fd >= 0 else {
      throw ValidationError("cannot create a network namespace (root needed): \(String(cString: strerror(box.errno)))")
    }
    fd = box.fd
  }

  deinit { close(fd) }

  /// `unshare(CLONE_NEWNET)`; looked up at run time because Swift's Glibc module leaves out the
  /// _GNU_SOURCE declarations.
  static func unshareNet() -> Int32 {
    typealias Fn = @convention(c) (Int32) -> Int32
    guard let sym = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "unshare") else { return -1 }
    let cloneNewNet: Int32 = 0x4000_0000
    return unsafeBitCast(sym, to: Fn.self)(cloneNewNet)
  }
}

final class FDBox: @unchecked Sendable {
  var fd: Int32 = -1
  var errno: Int32 = 0
  let done = DispatchSemaphore(value: 0)
}
