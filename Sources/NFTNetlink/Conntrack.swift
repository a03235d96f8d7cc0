import IPAddr

#if canImport(Glibc)
  import Glibc
#endif

/// One direction of a conntrack entry. Ports are 0 for protocols without ports.
public struct ConntrackTuple: Sendable, Hashable, CustomStringConvertible {
  public var source: IPAddress
  public var destination: IPAddress
  public var sourcePort: UInt16
  public var destinationPort: UInt16

  public init(
    source: IPAddress, destination: IPAddress, sourcePort: UInt16, destinationPort: UInt16
  ) {
    self.source = source
    self.destination = destination
    self.sourcePort = sourcePort
    self.destinationPort = destinationPort
  }

  public var description: String {
    "src=\(source) dst=\(destination) sport=\(sourcePort) dport=\(destinationPort)"
  }
}

/// A conntrack entry as the kernel reports it over ctnetlink.
public struct ConntrackFlow: Sendable, Hashable, CustomStringConvertible {
  /// IANA protocol number (17 for UDP).
  public var protocolNumber: UInt8
  public var original: ConntrackTuple
  public var reply: ConntrackTuple
  /// Conntrack zone (0 is the default zone).
  public var zone: UInt16
  /// The kernel's id of the entry; a delete that carries it fails (ENOENT) when the tuple now
  /// belongs to an entry with another id.
  public var id: UInt32?

  public static let udp: UInt8 = 17

  public init(
    protocolNumber: UInt8, original: ConntrackTuple, reply: ConntrackTuple, zone: UInt16 = 0,
    id: UInt32? = nil
  ) {
    self.protocolNumber = protocolNumber
    self.original = original
    self.reply = reply
    self.zone = zone
    self.id = id
  }

  public var family: IPAddress.Family { original.source.family }

  /// Whether the destination was rewritten: the reply comes from somewhere other than where the
  /// original packet was sent.
  public var isDestinationNATed: Bool {
    reply.source != original.destination || reply.sourcePort != original.destinationPort
  }

  public var description: String {
    "proto=\(protocolNumber) \(original) | reply \(reply)" + (zone != 0 ? " zone=\(zone)" : "")
  }
}

/// What one ``ConntrackCleaner/clean(families:protocolNumber:where:)`` did.
public struct ConntrackCleanupReport: Sendable, Equatable {
  /// Entries of the protocol that were looked at.
  public var scanned: Int
  /// Entries the predicate chose.
  public var matched: Int
  /// Entries the kernel deleted (chosen ones that expired meanwhile are not counted).
  public var deleted: Int
  /// Whether the kernel filtered the dump by protocol (CTA_FILTER, Linux 5.9 and later).
  public var kernelFiltered: Bool
  public var duration: Duration
}

/// Lists and deletes conntrack entries over ctnetlink (libmnl) in one network namespace.
///
/// A cleanup is one dump per IP family, filtered to one L4 protocol by the kernel where it
/// supports `CTA_FILTER` (and in Swift always), then one `IPCTNL_MSG_CT_DELETE` per chosen entry
/// giving its original tuple, zone and id.
public final class ConntrackCleaner {
  private let socket: NetlinkSocket
  /// Set once the kernel refused `CTA_FILTER`; later dumps are filtered in Swift only.
  var kernelFilterUnsupported = false

  /// Opens a ctnetlink socket in the namespace at `namespacePath`, or in the current namespace.
  public init(namespacePath: String? = nil) throws {
    socket = try NetlinkSocket(namespacePath: namespacePath)
    socket.growReceiveBuffer(bytes: 1 << 20)
  }

  /// Every entry of `family` and `protocolNumber`.
  public func flows(family: IPAddress.Family, protocolNumber: UInt8 = ConntrackFlow.udp) throws
    -> [ConntrackFlow]
  {
    var out: [ConntrackFlow] = []
    _ = try dump(family: family, protocolNumber: protocolNumber) { out.append($0) }
    return out
  }

  /// Deletes `flows`; returns how many the kernel deleted. Entries that are gone already are
  /// skipped silently.
  public func delete(_ flows: [ConntrackFlow]) throws -> Int {
    var deleted = 0
    var start = 0
    while start < flows.count {
      let end = min(start + NetlinkSocket.conntrackDeleteChunk, flows.count)
      deleted += try socket.deleteConntrack(flows[start..<end])
      start = end
    }
    return deleted
  }

  /// Dumps the entries of `protocolNumber` in each of `families` and deletes those `isStale`
  /// chooses.
  public func clean(
    families: some Sequence<IPAddress.Family>, protocolNumber: UInt8 = ConntrackFlow.udp,
    where isStale: (ConntrackFlow) -> Bool
  ) throws -> ConntrackCleanupReport {
    let clock = ContinuousClock()
    let start = clock.now
    var scanned = 0
    var chosen: [ConntrackFlow] = []
    var filtered = true
    for family in Set(families).sorted() {
      filtered =
        try dump(family: family, protocolNumber: protocolNumber) { flow in
          scanned += 1
          if isStale(flow) { chosen.append(flow) }
        } && filtered
    }
    let deleted = try delete(chosen)
    return ConntrackCleanupReport(
      scanned: scanned, matched: chosen.count, deleted: deleted, kernelFiltered: filtered,
      duration: clock.now - start)
  }

  /// Hands every entry of `family` and `protocolNumber` to `each`; returns whether the kernel
  /// did the protocol filtering.
  private func dump(
    family: IPAddress.Family, protocolNumber: UInt8, each: (ConntrackFlow) -> Void
  ) throws -> Bool {
    let matching: (ConntrackFlow) -> Void = { flow in
      if flow.protocolNumber == protocolNumber && flow.family == family { each(flow) }
    }
    if !kernelFilterUnsupported {
      do {
        try socket.dumpConntrack(family: family, protocolNumber: protocolNumber, each: matching)
        return true
      } catch NFTError.system(_, let e) where e == EINVAL || e == EOPNOTSUPP {
        kernelFilterUnsupported = true
      }
    }
    try socket.dumpConntrack(family: family, protocolNumber: nil, each: matching)
    return false
  }
}
