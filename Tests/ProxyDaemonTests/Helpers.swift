import AsyncHTTPClient
import Foundation
import IPAddr
import KubeModel
import Logging
import NFTables
import NIOCore
import NIOPosix
import ProxyCore
import ProxyDaemon
import Testing

/// The node the tests run as.
let nodeName = "node-a"

let testConfig = ProxyConfig(
  hostname: nodeName, nodeIPs: [IPAddress("192.168.1.10")!],
  clusterCIDRs: [CIDR("10.244.0.0/16")!], serviceCIDRs: [CIDR("10.96.0.0/16")!])

let quietLogger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

struct TimedOut: Error, CustomStringConvertible {
  var what: String
  var description: String { "timed out waiting for \(what)" }
}

/// Runs `operation`, failing if it takes longer than `seconds` (a hang guard, not a timing
/// assertion).
func withTimeout<T: Sendable>(
  _ what: String = "operation", seconds: Double = 60,
  _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
  try await withThrowingTaskGroup(of: T?.self) { group in
    group.addTask { try await operation() }
    group.addTask {
      try await Task.sleep(for: .seconds(seconds))
      return nil
    }
    defer { group.cancelAll() }
    guard let first = try await group.next(), let value = first else {
      throw TimedOut(what: what)
    }
    return value
  }
}

/// Polls `condition` until it holds (hang guard: `seconds`).
func eventually(
  _ what: String, seconds: Double = 60, _ condition: @escaping @Sendable () async -> Bool
) async throws {
  try await withTimeout(what, seconds: seconds) {
    while !(await condition()) {
      try await Task.sleep(for: .milliseconds(5))
    }
  }
}

/// A ClusterIP Service `ns/name` with one TCP port.
func clusterIPService(
  _ name: String, ns: String = "default", ip: String, port: Int = 80,
  internalLocal: Bool = false
) -> Service {
  Service(
    metadata: ObjectMeta(name: name, namespace: ns),
    spec: ServiceSpec(
      type: "ClusterIP", clusterIP: ip, clusterIPs: [ip], ipFamilies: ["IPv4"],
      ports: [ServicePort(name: "http", protocol: "TCP", port: port, targetPort: .int(8080))],
      internalTrafficPolicy: internalLocal ? "Local" : nil))
}

/// A LoadBalancer Service with externalTrafficPolicy Local and a health-check node port.
func localLBService(
  _ name: String, ns: String = "default", ip: String, nodePort: Int, healthCheckNodePort: Int,
  lbIP: String = "203.0.113.10"
) -> Service {
  Service(
    metadata: ObjectMeta(name: name, namespace: ns),
    spec: ServiceSpec(
      type: "LoadBalancer", clusterIP: ip, clusterIPs: [ip], ipFamilies: ["IPv4"],
      ports: [
        ServicePort(
          name: "http", protocol: "TCP", port: 80, targetPort: .int(8080), nodePort: nodePort),
        ServicePort(
          name: "https", protocol: "TCP", port: 443, targetPort: .int(8443),
          nodePort: nodePort + 1),
      ],
      externalTrafficPolicy: "Local", healthCheckNodePort: healthCheckNodePort),
    status: ServiceStatus(
      loadBalancer: LoadBalancerStatus(ingress: [LoadBalancerIngress(ip: lbIP)])))
}

/// An EndpointSlice for `service` with the given (address, node, ready) endpoints, serving the
/// port names `http` (8080) and `https` (8443).
func slice(
  for service: String, ns: String = "default", name: String? = nil,
  _ endpoints: [(String, String, Bool)]
) -> EndpointSlice {
  EndpointSlice(
    metadata: ObjectMeta(
      name: name ?? "\(service)-abc", namespace: ns,
      labels: [EndpointSlice.serviceNameLabel: service]),
    addressType: "IPv4",
    endpoints: endpoints.map { addr, node, ready in
      Endpoint(
        addresses: [addr], conditions: EndpointConditions(ready: ready, serving: ready),
        nodeName: node)
    },
    ports: [
      EndpointPort(name: "http", protocol: "TCP", port: 8080),
      EndpointPort(name: "https", protocol: "TCP", port: 8443),
    ])
}

/// A small cluster whose content depends on `generation` (so successive states differ).
func cluster(generation: Int) -> ClusterState {
  var services = [clusterIPService("web", ip: "10.96.0.10")]
  var slices = [
    slice(for: "web", [("10.244.1.5", nodeName, true), ("10.244.2.5", "node-b", true)])
  ]
  for i in 0..<generation {
    services.append(clusterIPService("gen\(i)", ip: "10.96.1.\(i + 1)"))
    slices.append(slice(for: "gen\(i)", [("10.244.2.\(i + 10)", "node-b", true)]))
  }
  return ClusterState(services: services, endpointSlices: slices)
}

/// What the sync loop must hand the applier for `state`.
func expectedRuleset(_ state: ClusterState) -> Ruleset {
  Compiler.compile(Resolver.resolve(state, config: testConfig), config: testConfig)
}

/// A port that was free a moment ago on 127.0.0.1.
func freePort() async throws -> Int {
  let server = try await HTTPServer.start(
    at: BindAddress(host: "127.0.0.1", port: 0), group: MultiThreadedEventLoopGroup.singleton
  ) { _ in HTTPResponse(status: .ok) }
  let port = server.port
  await server.close()
  return port
}

struct Fetched: Sendable {
  var status: Int
  var headers: [(String, String)]
  var body: String

  func header(_ name: String) -> String? {
    headers.first { $0.0.lowercased() == name.lowercased() }?.1
  }

  /// The body parsed as a JSON object.
  var json: [String: Any]? {
    (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any]
  }
}

/// GET `http://127.0.0.1:port/path` on a fresh connection.
func get(port: Int, _ path: String) async throws -> Fetched {
  var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
  request.headers.add(name: "Connection", value: "close")
  let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
  let body = try await response.body.collect(upTo: 1 << 24)
  return Fetched(
    status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) },
    body: String(buffer: body))
}

/// Whether nothing listens on 127.0.0.1:port any more (a plain TCP connect is refused; HTTP
/// clients would retry a refused connection until their deadline).
func connectionRefused(port: Int) async -> Bool {
  do {
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
      .connect(host: "127.0.0.1", port: port).get()
    try? await channel.close()
    return false
  } catch {
    return true
  }
}

/// Parses a Prometheus text exposition into `name{labels}` → value.
func parseMetrics(_ text: String) -> [String: Double] {
  var out: [String: Double] = [:]
  for line in text.split(separator: "\n") where !line.hasPrefix("#") {
    guard let space = line.lastIndex(of: " "), let v = Double(line[line.index(after: space)...])
    else { continue }
    out[String(line[..<space])] = v
  }
  return out
}

/// Runs a sync loop in the background for the duration of `body`.
func withRunningLoop<T: Sendable>(
  _ loop: SyncLoop, source: (any StateSource)? = nil,
  _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
  let task = Task { await loop.run(source: source) }
  defer { task.cancel() }
  let result = try await body()
  task.cancel()
  try await withTimeout("the sync loop to stop") { await task.value }
  return result
}

/// Waits until the loop sleeps for its next timer at `deadline` (it is idle).
func waitIdle(_ clock: ManualClock, until deadline: Duration) async throws {
  try await eventually("the loop to wait for \(deadline)") {
    clock.pendingDeadlines == [deadline]
  }
}
