import FakeKubeAPI
import Foundation
import KubeModel
import KubeWatch
import Logging
import Testing

/// A value shared between a test and the tasks it starts.
final class Locked<Value: Sendable>: @unchecked Sendable {
  private let lock = NSLock()
  private var value: Value
  init(_ value: Value) { self.value = value }
  var current: Value { lock.withLock { value } }
  func mutate<R>(_ body: (inout Value) -> R) -> R { lock.withLock { body(&value) } }
}

struct WaitTimeout: Error, CustomStringConvertible {
  var what: String
  var description: String { "timed out waiting for \(what)" }
}

/// Polls `condition` until it holds. The timeout only guards against a hang; no test depends on
/// how fast anything happens.
func waitUntil(
  _ what: String, timeout: Duration = .seconds(60), _ condition: () async throws -> Bool
) async throws {
  let deadline = ContinuousClock.now + timeout
  while try await !condition() {
    if ContinuousClock.now > deadline { throw WaitTimeout(what: what) }
    try await Task.sleep(for: .milliseconds(10))
  }
}

/// Options that make tests quick: short backoff (no timing is asserted).
let fastOptions = InformerOptions(
  pageSize: 2, watchTimeoutSeconds: 300...300, initialBackoff: .milliseconds(20),
  maxBackoff: .milliseconds(200), jitter: 0.2)

let testLogger: Logger = {
  var l = Logger(label: "kubewatch-test")
  l.logLevel = .critical
  return l
}()

func makeClient(_ server: FakeAPIServer, token: String? = "test-token", ca: [UInt8]? = nil)
  throws -> KubeClient
{
  try KubeClient(
    config: KubeConfig(server: server.url, certificateAuthorityPEM: ca, token: token),
    logger: testLogger)
}

/// Runs `body` with a started fake server and a client, and shuts both down afterwards.
func withServer(
  token: String? = "test-token",
  _ body: (FakeAPIServer, KubeClient) async throws -> Void
) async throws {
  let server = try await FakeAPIServer(token: token)
  let client = try makeClient(server, token: token)
  do {
    try await body(server, client)
  } catch {
    try? await client.shutdown()
    await server.shutdown()
    throw error
  }
  try await client.shutdown()
  await server.shutdown()
}

// MARK: - fixtures

let servicesPath = "/api/v1/services"
let slicesPath = "/apis/discovery.k8s.io/v1/endpointslices"
let nodesPath = "/api/v1/nodes"

func service(
  _ name: String, namespace: String = "default", clusterIP: String = "10.96.0.10", port: Int = 80,
  labels: [String: String]? = nil
) -> Service {
  Service(
    metadata: ObjectMeta(name: name, namespace: namespace, labels: labels),
    spec: ServiceSpec(
      type: "ClusterIP", clusterIP: clusterIP, clusterIPs: [clusterIP], ipFamilies: ["IPv4"],
      ports: [ServicePort(name: "http", protocol: "TCP", port: port, targetPort: .int(8080))]))
}

func slice(
  _ name: String, service: String, namespace: String = "default", addresses: [String]
) -> EndpointSlice {
  EndpointSlice(
    metadata: ObjectMeta(
      name: name, namespace: namespace, labels: [EndpointSlice.serviceNameLabel: service]),
    addressType: "IPv4",
    endpoints: addresses.map {
      Endpoint(addresses: [$0], conditions: EndpointConditions(ready: true), nodeName: "node-1")
    },
    ports: [EndpointPort(name: "http", protocol: "TCP", port: 8080)])
}

func node(_ name: String, ip: String = "192.168.1.10") -> Node {
  Node(
    metadata: ObjectMeta(name: name, labels: [Node.zoneLabel: "zone-a"]),
    spec: NodeSpec(podCIDR: "10.244.0.0/24", podCIDRs: ["10.244.0.0/24"]),
    status: NodeStatus(addresses: [NodeAddress(type: "InternalIP", address: ip)]))
}

/// Records an informer's updates.
final class UpdateRecorder<Object: KubeObject>: Sendable {
  let updates = Locked<[InformerUpdate<Object>]>([])
  var last: InformerUpdate<Object>? { updates.current.last }
  var count: Int { updates.current.count }
  @Sendable func record(_ u: InformerUpdate<Object>) { updates.mutate { $0.append(u) } }
}
