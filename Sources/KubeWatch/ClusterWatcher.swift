import KubeModel
import Logging

/// A complete view of the cluster, as delivered by ``ClusterWatcher``.
public struct ClusterSnapshot: Sendable, Equatable {
  /// Services, EndpointSlices (each sorted by `namespace/name`) and this node's Node.
  public var state: ClusterState
  /// Increases by one with every change of `state`.
  public var generation: UInt64
  /// Service changes seen so far (adds, updates, deletes; the initial list counts as adds).
  public var serviceChanges: Int
  /// EndpointSlice changes seen so far, counted the same way.
  public var endpointChanges: Int
  /// Node changes seen so far.
  public var nodeChanges: Int
}

/// Validators applied to objects from the API; an object that throws is logged and excluded.
public struct ClusterValidators: Sendable {
  public var service: Informer<Service>.Validator?
  public var endpointSlice: Informer<EndpointSlice>.Validator?
  public var node: Informer<Node>.Validator?

  public init(
    service: Informer<Service>.Validator? = nil,
    endpointSlice: Informer<EndpointSlice>.Validator? = nil,
    node: Informer<Node>.Validator? = nil
  ) {
    self.service = service
    self.endpointSlice = endpointSlice
    self.node = node
  }

  /// KubeModel's `Validation` (the same checks and normalization as manifests get).
  public static let standard = ClusterValidators(
    service: { try Validation.validate($0) },
    endpointSlice: { try Validation.validate($0) },
    node: { try Validation.validate($0) })

  /// Decoding only.
  public static let none = ClusterValidators()
}

/// Watches Services, EndpointSlices and this node's Node and delivers complete snapshots.
///
/// Run ``run()`` in a task and consume ``snapshots`` (or poll ``snapshot()``) alongside:
///
/// ```swift
/// let watcher = ClusterWatcher(client: client, nodeName: "node-1")
/// try await withThrowingTaskGroup(of: Void.self) { group in
///   group.addTask { try await watcher.run() }
///   for await snap in watcher.snapshots { sync(snap.state) }
/// }
/// ```
///
/// Nothing is delivered until all initial lists have completed. The stream keeps only the newest
/// snapshot when the consumer is slower than the events (changes coalesce; counters are totals).
public final class ClusterWatcher: Sendable {
  /// Snapshots, the first one only once every initial list is in. Single consumer; finishes when
  /// ``run()`` returns.
  public let snapshots: AsyncStream<ClusterSnapshot>
  private let continuation: AsyncStream<ClusterSnapshot>.Continuation
  private let store: SnapshotStore
  private let client: KubeClient
  private let nodeName: String?
  private let options: InformerOptions
  private let validators: ClusterValidators
  private let logger: Logger

  /// - Parameters:
  ///   - nodeName: the node whose Node object to watch; nil watches no Node.
  ///   - validators: checks applied to every object; `.standard` is KubeModel's `Validation`.
  public init(
    client: KubeClient, nodeName: String?, options: InformerOptions = InformerOptions(),
    validators: ClusterValidators = .standard,
    logger: Logger = Logger(label: "nftproxy.kubewatch")
  ) {
    self.client = client
    self.nodeName = nodeName
    self.options = options
    self.validators = validators
    self.logger = logger
    (snapshots, continuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    store = SnapshotStore(watchesNode: nodeName != nil, continuation: continuation)
  }

  /// The current snapshot, or nil while the initial lists are incomplete.
  public func snapshot() async -> ClusterSnapshot? {
    await store.current()
  }

  /// Whether every initial list has completed.
  public func hasSynced() async -> Bool {
    await store.current() != nil
  }

  /// Runs the informers until cancelled; finishes ``snapshots`` when it returns.
  public func run() async throws {
    defer { continuation.finish() }
    let store = self.store
    try await withThrowingTaskGroup(of: Void.self) { group in
      let services = Informer(
        client: client, resource: .services, options: options, validate: validators.service,
        logger: logger)
      group.addTask { try await services.run { await store.apply(services: $0) } }
      let slices = Informer(
        client: client, resource: .endpointSlices, options: options,
        validate: validators.endpointSlice, logger: logger)
      group.addTask { try await slices.run { await store.apply(endpointSlices: $0) } }
      if let nodeName {
        let node = Informer(
          client: client, resource: .node(named: nodeName), options: options,
          validate: validators.node, logger: logger)
        group.addTask { try await node.run { await store.apply(nodes: $0) } }
      }
      try await group.next()
    }
  }
}

/// Merges the informers' stores and publishes snapshots once all have synced.
actor SnapshotStore {
  private var services: [String: Service] = [:]
  private var slices: [String: EndpointSlice] = [:]
  private var nodes: [String: Node] = [:]
  private var servicesSynced = false
  private var slicesSynced = false
  private var nodesSynced: Bool
  private var generation: UInt64 = 0
  private var serviceChanges = 0
  private var endpointChanges = 0
  private var nodeChanges = 0
  private var latest: ClusterSnapshot?
  private let continuation: AsyncStream<ClusterSnapshot>.Continuation

  init(watchesNode: Bool, continuation: AsyncStream<ClusterSnapshot>.Continuation) {
    nodesSynced = !watchesNode
    self.continuation = continuation
  }

  func current() -> ClusterSnapshot? { latest }

  func apply(services update: InformerUpdate<Service>) {
    services = update.objects
    servicesSynced = true
    serviceChanges += update.changes.count
    publish(changed: !update.changes.isEmpty)
  }

  func apply(endpointSlices update: InformerUpdate<EndpointSlice>) {
    slices = update.objects
    slicesSynced = true
    endpointChanges += update.changes.count
    publish(changed: !update.changes.isEmpty)
  }

  func apply(nodes update: InformerUpdate<Node>) {
    nodes = update.objects
    nodesSynced = true
    nodeChanges += update.changes.count
    publish(changed: !update.changes.isEmpty)
  }

  private func publish(changed: Bool) {
    guard servicesSynced && slicesSynced && nodesSynced else { return }
    guard changed || latest == nil else { return }
    generation += 1
    let state = ClusterState(
      services: services.keys.sorted().compactMap { services[$0] },
      endpointSlices: slices.keys.sorted().compactMap { slices[$0] },
      nodes: nodes.keys.sorted().compactMap { nodes[$0] })
    let snap = ClusterSnapshot(
      state: state, generation: generation, serviceChanges: serviceChanges,
      endpointChanges: endpointChanges, nodeChanges: nodeChanges)
    latest = snap
    continuation.yield(snap)
  }
}
