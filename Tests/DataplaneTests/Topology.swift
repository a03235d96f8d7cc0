import Foundation
import NFTProxyCLI
import TestSupport

/// The test network, built from namespaces this test creates and removed afterwards. Nothing
/// is added to the machine's own namespace: every link runs between two of these namespaces.
///
/// ```
///  client ns                    node ns (node-a, nftproxy rules)                 pod ns a1..a4
///  192.168.10.100-.116, .200    eth-client 192.168.10.11                          eth0 10.244.1.1x/24
///  fd00:192:168:10::100-::116   fd00:192:168:10::11                               fd00:10:244:1::1x/64
///  eth0 ─────── veth ───────── eth-client       cbr0 10.244.1.1 ── vpN (hairpin) ── eth0
///  default via node                             fd00:10:244:1::1                  default via cbr0
///                               eth-nodeb 192.168.20.1 ─ veth ─ eth0 192.168.20.2  remote ns (node-b)
///                               route 10.244.2.0/24 via .20.2                     b1..b4 10.244.2.1x/32
///                               default via client                                fd00:10:244:2::1x/128
/// ```
final class Topology {
  static let nodeIPv4 = "192.168.10.11"
  static let nodeIPv6 = "fd00:192:168:10::11"
  static let clientIPv4 = "192.168.10.100"
  static let clientIPv6 = "fd00:192:168:10::100"
  /// Extra client source addresses: .101-.116 (and ::101-::116).
  static let extraClientIPv4 = (101...116).map { "192.168.10.\($0)" }
  static let extraClientIPv6 = (101...116).map { "fd00:192:168:10::\($0)" }
  /// A client address that source ranges leave out.
  static let outsiderIPv4 = "192.168.10.200"

  /// Every address of the node: what a masqueraded connection comes from.
  static let nodeAddresses: Set<String> = [
    nodeIPv4, "10.244.1.1", "192.168.20.1", nodeIPv6, "fd00:10:244:1::1", "fd00:192:168:20::1",
  ]

  static let nodeFlags = [
    "--hostname-override", "node-a",
    "--cluster-cidr", "10.244.0.0/16", "--cluster-cidr", "fd00:10:244::/56",
    "--service-cidr", "10.96.0.0/16", "--service-cidr", "fd00:10:96::/112",
    "--node-ip", nodeIPv4, "--node-ip", nodeIPv6,
  ]

  let node: NetNS
  let client: NetNS
  let remote: NetNS
  /// Pods on this node (a1...), each in its own namespace behind the bridge.
  let localPods: [Pod]
  /// Pods on node-b (b1...), all in the remote namespace.
  let remotePods: [Pod]
  private var podNamespaces: [String: NetNS] = [:]
  let servers = PodServers()
  private var manifestFiles: [String] = []

  init(localPods localCount: Int = 4, remotePods remoteCount: Int = 4) throws {
    node = try NetNS(prefix: "dp-node")
    client = try NetNS(prefix: "dp-client")
    remote = try NetNS(prefix: "dp-nodeb")
    localPods = (1...localCount).map {
      Pod(
        name: "a\($0)", ipv4: "10.244.1.\(10 + $0)", ipv6: "fd00:10:244:1::\(10 + $0)",
        nodeName: "node-a",
        zone: "zone-a")
    }
    remotePods = (1...remoteCount).map {
      Pod(
        name: "b\($0)", ipv4: "10.244.2.\(10 + $0)", ipv6: "fd00:10:244:2::\(10 + $0)",
        nodeName: "node-b",
        zone: "zone-b")
    }
    do {
      for pod in localPods { podNamespaces[pod.name] = try NetNS(prefix: "dp-\(pod.name)") }
      try build()
      try startServers()
    } catch {
      teardown()
      throw error
    }
  }

  /// The namespace a pod's sockets live in.
  func namespace(of pod: Pod) -> NetNS {
    podNamespaces[pod.name] ?? remote
  }

  func pod(_ name: String) -> Pod {
    (localPods + remotePods).first { $0.name == name }!
  }

  private static func noDAD(_ ns: NetNS) throws {
    // No duplicate address detection: addresses are usable the moment they are added.
    try ns.exec([
      "sysctl", "-q", "-w", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
    ])
  }

  private static func batch(_ ns: NetNS, _ lines: [String]) throws {
    try runCommand(
      ["ip", "-n", ns.name, "-batch", "-"], input: lines.joined(separator: "\n") + "\n")
  }

  private func build() throws {
    for ns in [node, client, remote] + podNamespaces.values { try Self.noDAD(ns) }
    try node.exec([
      "sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
      "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0",
    ])

    var nodeLines = [
      "link add cbr0 type bridge mcast_snooping 0",
      "addr add 10.244.1.1/24 dev cbr0",
      "addr add fd00:10:244:1::1/64 dev cbr0 nodad",
      "link set cbr0 up",
      "link add eth-client type veth peer name eth0 netns \(client.name)",
      "addr add \(Self.nodeIPv4)/24 dev eth-client",
      "addr add \(Self.nodeIPv6)/64 dev eth-client nodad",
      "link set eth-client up",
      "link add eth-nodeb type veth peer name eth0 netns \(remote.name)",
      "addr add 192.168.20.1/24 dev eth-nodeb",
      "addr add fd00:192:168:20::1/64 dev eth-nodeb nodad",
      "link set eth-nodeb up",
    ]
    for (i, pod) in localPods.enumerated() {
      let port = "vp\(i + 1)"
      nodeLines += [
        "link add \(port) type veth peer name eth0 netns \(namespace(of: pod).name)",
        "link set \(port) master cbr0",
        // kubelet's hairpin-veth mode: a pod may reach itself through its Service.
        "link set \(port) type bridge_slave hairpin on",
        "link set \(port) up",
      ]
    }
    try Self.batch(node, nodeLines)

    var clientLines = [
      "addr add \(Self.clientIPv4)/24 dev eth0",
      "addr add \(Self.clientIPv6)/64 dev eth0 nodad",
      "addr add \(Self.outsiderIPv4)/24 dev eth0",
    ]
    clientLines += Self.extraClientIPv4.map { "addr add \($0)/24 dev eth0" }
    clientLines += Self.extraClientIPv6.map { "addr add \($0)/64 dev eth0 nodad" }
    clientLines += [
      "link set eth0 up",
      "route add default via \(Self.nodeIPv4)",
      "route add default via \(Self.nodeIPv6)",
    ]
    try Self.batch(client, clientLines)

    var remoteLines = [
      "addr add 192.168.20.2/24 dev eth0",
      "addr add fd00:192:168:20::2/64 dev eth0 nodad",
    ]
    for pod in remotePods {
      remoteLines += [
        "addr add \(pod.ipv4)/32 dev eth0", "addr add \(pod.ipv6)/128 dev eth0 nodad",
      ]
    }
    remoteLines += [
      "link set eth0 up",
      "route add default via 192.168.20.1",
      "route add default via fd00:192:168:20::1",
    ]
    try Self.batch(remote, remoteLines)

    for pod in localPods {
      try Self.batch(
        namespace(of: pod),
        [
          "addr add \(pod.ipv4)/24 dev eth0",
          "addr add \(pod.ipv6)/64 dev eth0 nodad",
          "link set eth0 up",
          "route add default via 10.244.1.1",
          "route add default via fd00:10:244:1::1",
        ])
    }

    // Routes through gateways last, once every link is up.
    try Self.batch(
      node,
      [
        "route add 10.244.2.0/24 via 192.168.20.2",
        "route add fd00:10:244:2::/64 via fd00:192:168:20::2",
        "route add default via \(Self.clientIPv4)",
        "route add default via \(Self.clientIPv6)",
      ])
  }

  private func startServers() throws {
    for pod in localPods + remotePods {
      for ip in [pod.ipv4, pod.ipv6] {
        try servers.listen(
          pod: pod.name, in: namespace(of: pod), ip: ip, port: targetPort, protocols: L4.allCases)
      }
    }
    try servers.start()
  }

  /// Programs the node: writes the manifests to a file and runs `nftproxy run --once` against
  /// the node namespace, in this process.
  func program(_ services: [ServiceSpec], extraFlags: [String] = []) async throws {
    let path = FileManager.default.temporaryDirectory
      .appendingPathComponent("nftproxy-dataplane-\(node.name)-\(manifestFiles.count).yaml").path
    try Manifest.yaml(services).write(toFile: path, atomically: true, encoding: .utf8)
    manifestFiles.append(path)
    let args =
      ["run", "--once", "--manifests", path, "--netns", node.path] + Self.nodeFlags + extraFlags
    try await NFTProxyCommand.execute(args)
  }

  func teardown() {
    servers.stop()
    for ns in podNamespaces.values { ns.delete() }
    for ns in [client, remote, node] { ns.delete() }
    for path in manifestFiles { try? FileManager.default.removeItem(atPath: path) }
    manifestFiles = []
  }

  deinit { teardown() }
}
