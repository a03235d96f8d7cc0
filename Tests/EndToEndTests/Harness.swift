import ArgumentParser
import AsyncHTTPClient
import FakeKubeAPI
import Foundation
import KubeModel
import NFTProxyCLI
import NIOCore
import TestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// How long a wait may take before the test fails. Only a guard against a hang: no assertion
/// depends on how fast anything happens.
let hangGuard: Duration = .seconds(30)

/// The bearer token the fake API server demands and the kubeconfig carries.
let apiToken = "e2e-token"

/// A value shared between a test and the tasks it starts.
final class Locked<Value: Sendable>: @unchecked Sendable {
  private let lock = NSLock()
  private var value: Value
  init(_ value: Value) { self.value = value }
  var current: Value { lock.withLock { value } }
  func set(_ newValue: Value) { lock.withLock { value = newValue } }
}

struct HarnessError: Error, CustomStringConvertible {
  var description: String
}

/// One end-to-end setup: a network namespace of its own, a fake API server over TLS on
/// 127.0.0.1 with a bearer token, a kubeconfig for it, and `nftproxy run` started in-process
/// (its API client and HTTP listeners in the test's namespace, its nftables socket in the test
/// namespace via `--netns`).
final class DaemonHarness: Sendable {
  let netns: NetNS
  let server: FakeAPIServer
  let dir: TempDir
  let kubeconfig: String
  let healthzPort: Int
  let metricsPort: Int
  /// How the daemon's run ended: nil while running.
  let outcome = Locked<Result<Void, HarnessError>?>(nil)
  private let task = Locked<Task<Void, Never>?>(nil)

  private init(netns: NetNS, server: FakeAPIServer, dir: TempDir, kubeconfig: String) throws {
    self.netns = netns
    self.server = server
    self.dir = dir
    self.kubeconfig = kubeconfig
    healthzPort = try FreePorts.take()
    metricsPort = try FreePorts.take()
  }

  /// Sets everything up, lets `prepare` fill the API server before the daemon starts, runs
  /// `body`, and always stops the daemon, the server and the namespace afterwards.
  static func run(
    syncPeriod: Double = 30,
    prepare: (FakeAPIServer) throws -> Void = { _ in },
    _ body: (DaemonHarness) async throws -> Void
  ) async throws {
    let certs = try TestCertificates.shared()
    let netns = try NetNS(prefix: "e2e")
    let dir = try TempDir()
    let server: FakeAPIServer
    do {
      server = try await FakeAPIServer(token: apiToken, tlsConfiguration: certs.serverTLS())
    } catch {
      netns.delete()
      dir.cleanup()
      throw error
    }
    let harness: DaemonHarness
    do {
      let kubeconfig = try dir.write(
        "kubeconfig", certs.kubeconfig(server: server.url, token: apiToken))
      harness = try DaemonHarness(netns: netns, server: server, dir: dir, kubeconfig: kubeconfig)
      try prepare(server)
      harness.start(syncPeriod: syncPeriod)
    } catch {
      await server.shutdown()
      netns.delete()
      dir.cleanup()
      throw error
    }
    var failure: (any Error)?
    do {
      try await body(harness)
    } catch {
      failure = error
    }
    await harness.stop()
    await server.shutdown()
    netns.delete()
    dir.cleanup()
    if let failure { throw failure }
  }

  /// The `nftproxy run` command line.
  func arguments(syncPeriod: Double) -> [String] {
    [
      "run", "--kubeconfig", kubeconfig, "--netns", netns.path, "--hostname-override", "node-a",
      "--cluster-cidr", "10.244.0.0/16", "--service-cidr", "10.96.0.0/16",
      "--healthz-bind-address", "127.0.0.1:\(healthzPort)",
      "--metrics-bind-address", "127.0.0.1:\(metricsPort)",
      "--min-sync-period", "0.1", "--sync-period", "\(syncPeriod)",
    ]
  }

  /// Starts the daemon in a task. It is parsed and run the way `nftproxy` runs it
  /// (`NFTProxyCommand.execute`: `runMain` minus the `exit` on error).
  private func start(syncPeriod: Double) {
    let args = arguments(syncPeriod: syncPeriod)
    let outcome = self.outcome
    task.set(
      Task {
        do {
          try await NFTProxyCommand.execute(args)
          outcome.set(.success(()))
        } catch {
          outcome.set(.failure(HarnessError(description: "nftproxy run threw: \(error)")))
        }
      })
  }

  /// Whether the daemon is still running.
  var isRunning: Bool { outcome.current == nil }

  /// Stops the daemon as SIGTERM would (cancels its task) and waits until it has returned.
  /// Records an issue when it does not return or returned with an error.
  func stop() async {
    guard let task = task.current else { return }
    task.cancel()
    let deadline = ContinuousClock.now + hangGuard
    while outcome.current == nil && ContinuousClock.now < deadline {
      try? await Task.sleep(for: .milliseconds(20))
    }
    switch outcome.current {
    case nil:
      Issue.record("the daemon did not stop within \(hangGuard) of being cancelled")
    case .failure(let error):
      Issue.record("the daemon ended with an error: \(error)")
    case .success:
      break
    }
    self.task.set(nil)
  }

  // MARK: - kernel rules

  /// `nft list ruleset` in the test namespace, run off Swift's cooperative threads.
  func ruleset() async throws -> String {
    let netns = self.netns
    return try await withCheckedThrowingContinuation { continuation in
      DispatchQueue.global().async {
        continuation.resume(with: Result { try netns.nftListRuleset() })
      }
    }
  }

  /// Polls the ruleset until `condition` holds and returns it. Fails (throws) when the hang
  /// guard expires or the daemon has ended, with the last ruleset in the message.
  @discardableResult
  func waitForRules(
    _ what: String, sourceLocation: SourceLocation = #_sourceLocation,
    _ condition: (Ruleset) -> Bool
  ) async throws -> Ruleset {
    let deadline = ContinuousClock.now + hangGuard
    while true {
      let rules = Ruleset(text: try await ruleset())
      if condition(rules) { return rules }
      if case .failure(let error) = outcome.current {
        throw HarnessError(description: "waiting for \(what): \(error)")
      }
      if ContinuousClock.now > deadline {
        throw HarnessError(
          description: "timed out waiting for \(what); ruleset:\n\(rules.text)")
      }
      try await Task.sleep(for: .milliseconds(100))
    }
  }

  /// Polls `condition` until it holds; throws when the hang guard expires.
  func waitUntil(_ what: String, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + hangGuard
    while try await !condition() {
      if ContinuousClock.now > deadline {
        throw HarnessError(description: "timed out waiting for \(what)")
      }
      try await Task.sleep(for: .milliseconds(50))
    }
  }

  // MARK: - HTTP

  /// A GET over real HTTP to 127.0.0.1:`port` on a fresh connection.
  func get(port: Int, path: String) async throws -> (status: Int, body: String) {
    var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
    request.headers.add(name: "Connection", value: "close")
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
    let body = try await response.body.collect(upTo: 4 << 20)
    return (Int(response.status.code), String(buffer: body))
  }
}

/// A ruleset as `nft list ruleset` prints it, with helpers for what the tests look for.
struct Ruleset: Sendable, CustomStringConvertible {
  let text: String
  var description: String { text }

  /// Whether nftproxy's IPv4 table exists.
  var hasTable: Bool { text.contains("table ip nftproxy {") }

  /// Whether the chain `name` exists.
  func hasChain(_ name: String) -> Bool { text.contains("\tchain \(name) {") }

  /// The body of the chain `name` (its lines up to the closing brace), or nil.
  func chain(_ name: String) -> String? {
    guard let start = text.range(of: "\tchain \(name) {\n") else { return nil }
    guard let end = text.range(of: "\n\t}", range: start.upperBound..<text.endIndex) else {
      return nil
    }
    return String(text[start.upperBound..<end.lowerBound])
  }

  /// The elements of the set or map `name` (the text between its braces), or "" when it has
  /// none, or nil when it does not exist.
  func elements(of name: String) -> String? {
    for kind in ["set", "map"] {
      guard let start = text.range(of: "\t\(kind) \(name) {\n") else { continue }
      guard let end = text.range(of: "\n\t}", range: start.upperBound..<text.endIndex) else {
        return nil
      }
      let body = text[start.upperBound..<end.lowerBound]
      guard let e = body.range(of: "elements = {") else { return "" }
      return String(body[e.upperBound...])
    }
    return nil
  }

  /// The `dnat to ADDRESS:PORT` targets of the chain `name`, in order.
  func dnatTargets(_ name: String) -> [String] {
    guard let body = chain(name) else { return [] }
    return body.split(separator: "\n").compactMap { line in
      guard let r = line.range(of: "dnat to ") else { return nil }
      return String(line[r.upperBound...].prefix { !$0.isWhitespace })
    }
  }

  /// Whether the ClusterIP `ip` is an element of `cluster-ips`.
  func hasClusterIP(_ ip: String) -> Bool {
    elements(of: "cluster-ips")?.contains("\(ip) comment") ?? false
  }
}

/// TCP ports nobody listens on, handed out once per test process. Taken below the ephemeral
/// range so outgoing connections do not grab them in the meantime.
enum FreePorts {
  private static let taken = Locked<Set<Int>>([])
  private static let lock = NSLock()

  static func take() throws -> Int {
    try lock.withLock {
      for _ in 0..<200 {
        let port = Int.random(in: 20000..<32000)
        if taken.current.contains(port) { continue }
        if canBind(port) {
          taken.set(taken.current.union([port]))
          return port
        }
      }
      throw HarnessError(description: "no free TCP port found")
    }
  }

  /// Whether 0.0.0.0:`port` can be bound now (so 127.0.0.1:`port` can too).
  private static func canBind(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = INADDR_ANY
    return withUnsafePointer(to: &addr) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
      }
    }
  }
}
