import Foundation
import IPAddr
import TestSupport
import Testing

@testable import NFTNetlink

#if canImport(Glibc)
  import Glibc
#endif

/// A namespace whose own traffic creates conntrack entries: UDP to a "service" address is
/// DNATed on output to one of two "endpoints", chosen by source port.
private struct ConntrackLab {
  let ns: NetNS

  static let script = """
    table ip cttest {
      chain raw {
        type filter hook output priority -300; policy accept;
        udp sport 40006 ct zone set 7
      }
      chain nat {
        type nat hook output priority -100; policy accept;
        ip daddr 10.96.0.10 udp dport 53 udp sport { 40001, 40006 } dnat to 10.0.0.1:5353
        ip daddr 10.96.0.10 udp dport 53 udp sport 40002 dnat to 10.0.0.2:5353
      }
    }
    table ip6 cttest {
      chain nat {
        type nat hook output priority -100; policy accept;
        ip6 daddr fd00:96::10 udp dport 53 udp sport 40001 dnat to [fd00::1]:5353
        ip6 daddr fd00:96::10 udp dport 53 udp sport 40002 dnat to [fd00::2]:5353
      }
    }
    """

  init() throws {
    ns = try NetNS(prefix: "nftp-ct")
    for a in ["10.0.0.1/32", "10.0.0.2/32", "10.0.0.3/32", "10.96.0.10/32"] {
      try ns.exec(["ip", "addr", "add", a, "dev", "lo"])
    }
    for a in ["fd00::1/128", "fd00::2/128", "fd00:96::10/128"] {
      try ns.exec(["ip", "addr", "add", a, "dev", "lo", "nodad"])
    }
    try ns.nftLoad(Self.script)
  }

  /// Sends one UDP datagram from `sourcePort` to `address`:`port` inside the namespace.
  func udp(from sourcePort: UInt16, to address: String, _ port: UInt16) throws {
    let ip = IPAddress(address)!
    let v4 = ip.family == .ipv4
    let fd = try ns.socket(domain: v4 ? AF_INET : AF_INET6, type: Int32(SOCK_DGRAM.rawValue))
    defer { close(fd) }
    var one: Int32 = 1
    _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(4))
    try withSockaddr(ip: nil, v4: v4, port: sourcePort) { sa, len in
      if bind(fd, sa, len) != 0 { throw SocketError(errno: errno, call: "bind") }
    }
    try withSockaddr(ip: ip, v4: v4, port: port) { sa, len in
      let payload: [UInt8] = Array("query".utf8)
      if sendto(fd, payload, payload.count, 0, sa, len) < 0 {
        throw SocketError(errno: errno, call: "sendto")
      }
    }
  }

  /// An established TCP connection to a listener at `address`:`port`; the sockets stay open
  /// until the returned closure runs.
  func tcp(to address: String, _ port: UInt16) throws -> () -> Void {
    let listener = try ns.socket(domain: AF_INET, type: Int32(SOCK_STREAM.rawValue))
    let client = try ns.socket(domain: AF_INET, type: Int32(SOCK_STREAM.rawValue))
    let done = {
      close(client)
      close(listener)
    }
    do {
      try withSockaddr(ip: IPAddress(address)!, v4: true, port: port) { sa, len in
        if bind(listener, sa, len) != 0 { throw SocketError(errno: errno, call: "bind") }
        if listen(listener, 1) != 0 { throw SocketError(errno: errno, call: "listen") }
        if connect(client, sa, len) != 0 { throw SocketError(errno: errno, call: "connect") }
      }
    } catch {
      done()
      throw error
    }
    return done
  }

  private func withSockaddr(
    ip: IPAddress?, v4: Bool, port: UInt16,
    _ body: (UnsafePointer<sockaddr>, socklen_t) throws -> Void
  ) throws {
    if v4 {
      var sa = sockaddr_in()
      sa.sin_family = sa_family_t(AF_INET)
      sa.sin_port = port.bigEndian
      if case .v4(let v) = ip { sa.sin_addr.s_addr = v.bigEndian }
      try withUnsafePointer(to: &sa) {
        try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
          try body($0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
      }
    } else {
      var sa = sockaddr_in6()
      sa.sin6_family = sa_family_t(AF_INET6)
      sa.sin6_port = port.bigEndian
      if let ip {
        withUnsafeMutableBytes(of: &sa.sin6_addr) { raw in
          for (i, b) in ip.bytes.enumerated() { raw[i] = b }
        }
      }
      try withUnsafePointer(to: &sa) {
        try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
          try body($0, socklen_t(MemoryLayout<sockaddr_in6>.size))
        }
      }
    }
  }
}

@Suite(.serialized) struct ConntrackCleanerTests {
  static let vip4 = IPAddress("10.96.0.10")!
  static let vip6 = IPAddress("fd00:96::10")!
  static let serving: Set<IPAddress> = [IPAddress("10.0.0.2")!, IPAddress("fd00::2")!]

  /// A flow to the service port whose reply does not come from the serving endpoint.
  static func stale(_ f: ConntrackFlow) -> Bool {
    [vip4, vip6].contains(f.original.destination) && f.original.destinationPort == 53
      && !(serving.contains(f.reply.source) && f.reply.sourcePort == 5353)
  }

  @Test(.enabled(if: KernelTests.enabled))
  func dumpsUDPEntriesWithTuplesZoneAndNAT() throws {
    let lab = try ConntrackLab()
    defer { lab.ns.delete() }
    try lab.udp(from: 40001, to: "10.96.0.10", 53)
    try lab.udp(from: 40006, to: "10.96.0.10", 53)
    try lab.udp(from: 40005, to: "10.0.0.3", 9999)
    try lab.udp(from: 40002, to: "fd00:96::10", 53)
    let closeTCP = try lab.tcp(to: "10.0.0.3", 9998)
    defer { closeTCP() }

    let cleaner = try ConntrackCleaner(namespacePath: lab.ns.path)
    let v4 = try cleaner.flows(family: .ipv4)
    #expect(v4.count == 3, "\(v4)")
    #expect(v4.allSatisfy { $0.protocolNumber == ConntrackFlow.udp && $0.id != nil })
    let natted = try #require(v4.first { $0.original.sourcePort == 40001 })
    #expect(natted.original.destination == Self.vip4)
    #expect(natted.original.destinationPort == 53)
    #expect(natted.reply.source == IPAddress("10.0.0.1")!)
    #expect(natted.reply.sourcePort == 5353)
    #expect(natted.isDestinationNATed)
    #expect(natted.zone == 0)
    let zoned = try #require(v4.first { $0.original.sourcePort == 40006 })
    #expect(zoned.zone == 7)
    let plain = try #require(v4.first { $0.original.sourcePort == 40005 })
    #expect(!plain.isDestinationNATed)

    let v6 = try cleaner.flows(family: .ipv6)
    #expect(v6.count == 1, "\(v6)")
    #expect(v6.first?.reply.source == IPAddress("fd00::2")!)
    #expect(v6.first?.original.destination == Self.vip6)

    let tcp = try cleaner.flows(family: .ipv4, protocolNumber: 6)
    #expect(tcp.count == 1 && tcp.first?.original.destinationPort == 9998, "\(tcp)")
  }

  @Test(.enabled(if: KernelTests.enabled))
  func deletesExactlyTheChosenUDPEntries() throws {
    let lab = try ConntrackLab()
    defer { lab.ns.delete() }
    try lab.udp(from: 40001, to: "10.96.0.10", 53)  // removed endpoint: goes
    try lab.udp(from: 40002, to: "10.96.0.10", 53)  // serving endpoint: stays
    try lab.udp(from: 40003, to: "10.96.0.10", 53)  // never DNATed: goes
    try lab.udp(from: 40006, to: "10.96.0.10", 53)  // removed endpoint, zone 7: goes
    try lab.udp(from: 40005, to: "10.0.0.3", 9999)  // not a service: stays
    try lab.udp(from: 40001, to: "fd00:96::10", 53)  // removed endpoint: goes
    try lab.udp(from: 40002, to: "fd00:96::10", 53)  // serving endpoint: stays
    let closeTCP = try lab.tcp(to: "10.96.0.10", 53)  // not UDP: stays, though the predicate matches
    defer { closeTCP() }

    let cleaner = try ConntrackCleaner(namespacePath: lab.ns.path)
    let report = try cleaner.clean(families: [.ipv4, .ipv6], where: Self.stale)
    #expect(report.scanned == 7)
    #expect(report.matched == 4)
    #expect(report.deleted == 4)
    #expect(report.kernelFiltered)

    let left4 = try cleaner.flows(family: .ipv4).map(\.original.sourcePort).sorted()
    #expect(left4 == [40002, 40005])
    let left6 = try cleaner.flows(family: .ipv6).map(\.reply.source)
    #expect(left6 == [IPAddress("fd00::2")!])
    #expect(try cleaner.flows(family: .ipv4, protocolNumber: 6).count == 1)

    let again = try cleaner.clean(families: [.ipv4, .ipv6], where: Self.stale)
    #expect(again.matched == 0 && again.deleted == 0)
  }

  @Test(.enabled(if: KernelTests.enabled))
  func aDeleteNamesTheEntryById() throws {
    let lab = try ConntrackLab()
    defer { lab.ns.delete() }
    try lab.udp(from: 40001, to: "10.96.0.10", 53)
    let cleaner = try ConntrackCleaner(namespacePath: lab.ns.path)
    let flows = try cleaner.flows(family: .ipv4)
    var other = try #require(flows.first)
    other.id = other.id.map { $0 &+ 1 }
    #expect(try cleaner.delete([other]) == 0, "another entry's id")
    #expect(try cleaner.flows(family: .ipv4).count == 1)
    #expect(try cleaner.delete(flows) == 1)
    #expect(try cleaner.delete(flows) == 0, "already gone")
    #expect(try cleaner.flows(family: .ipv4).isEmpty)
  }

  @Test(.enabled(if: KernelTests.enabled))
  func withoutTheKernelFilterSwiftFiltersTheDump() throws {
    let lab = try ConntrackLab()
    defer { lab.ns.delete() }
    try lab.udp(from: 40001, to: "10.96.0.10", 53)
    try lab.udp(from: 40002, to: "fd00:96::10", 53)
    let closeTCP = try lab.tcp(to: "10.96.0.10", 53)
    defer { closeTCP() }
    let cleaner = try ConntrackCleaner(namespacePath: lab.ns.path)
    cleaner.kernelFilterUnsupported = true
    let report = try cleaner.clean(families: [.ipv4], where: Self.stale)
    #expect(!report.kernelFiltered)
    #expect(report.scanned == 1 && report.deleted == 1)
    #expect(try cleaner.flows(family: .ipv4).isEmpty)
    #expect(try cleaner.flows(family: .ipv6).count == 1)
    #expect(try cleaner.flows(family: .ipv4, protocolNumber: 6).count == 1)
  }

  @Test(.enabled(if: KernelTests.enabled))
  func manyDeletesGoOutInChunks() throws {
    let lab = try ConntrackLab()
    defer { lab.ns.delete() }
    for port in UInt16(41000)..<41300 { try lab.udp(from: port, to: "10.0.0.3", 9999) }
    let cleaner = try ConntrackCleaner(namespacePath: lab.ns.path)
    let report = try cleaner.clean(families: [.ipv4]) { $0.original.destinationPort == 9999 }
    #expect(report.matched == 300)
    #expect(report.deleted == 300)
    #expect(try cleaner.flows(family: .ipv4).isEmpty)
  }
}
