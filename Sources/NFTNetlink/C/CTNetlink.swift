import CNetfilter
import IPAddr

#if canImport(Glibc)
  import Glibc
#endif

/// ctnetlink (`NFNL_SUBSYS_CTNETLINK`) messages: conntrack dumps and deletes.
extension NetlinkSocket {
  /// Deletes sent per `send`; their ACKs must fit in the receive buffer.
  static let conntrackDeleteChunk = 128

  /// Raises the receive buffer (ACKs of a chunk of deletes queue up until read).
  func growReceiveBuffer(bytes: Int) {
    var v = Int32(clamping: bytes)
    if setsockopt(fd, SOL_SOCKET, Int32(nftp_so_rcvbufforce()), &v, socklen_t(4)) != 0 {
      _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, socklen_t(4))
    }
  }

  /// Dumps the conntrack entries of `family`; with `protocolNumber` the kernel returns only
  /// that protocol (`CTA_FILTER`). Kernels without `CTA_FILTER` ignore it (before 5.9) or answer
  /// EINVAL/EOPNOTSUPP.
  func dumpConntrack(
    family: IPAddress.Family, protocolNumber: UInt8?, each: (ConntrackFlow) -> Void
  ) throws {
    var buf = [UInt8](repeating: 0, count: 512)
    let seq = reserveSeq(1)
    let len: Int = buf.withUnsafeMutableBytes { raw in
      let nlh = CT.header(
        raw.baseAddress!, type: IPCTNL_MSG_CT_GET, flags: NLM_F_DUMP, family: family, seq: seq)
      if let protocolNumber {
        let tuple = mnl_attr_nest_start(nlh, CT.attr(CTA_TUPLE_ORIG))
        let proto = mnl_attr_nest_start(nlh, CT.attr(CTA_TUPLE_PROTO))
        mnl_attr_put_u8(nlh, CT.attr(CTA_PROTO_NUM), protocolNumber)
        mnl_attr_nest_end(nlh, proto)
        mnl_attr_nest_end(nlh, tuple)
        let filter = mnl_attr_nest_start(nlh, CT.attr(CTA_FILTER))
        mnl_attr_put_u32(nlh, CT.attr(CTA_FILTER_ORIG_FLAGS), NFTP_CTA_FILTER_FLAG_PROTO_NUM)
        mnl_attr_nest_end(nlh, filter)
      }
      return Int(nlh.pointee.nlmsg_len)
    }
    try sendRaw(buf, count: len, what: "conntrack dump request")
    var done = false
    while !done {
      let n = receive(wait: true, timeoutMs: 60_000)
      if n < 0 {
        if errno == EINTR { continue }
        throw NFTError.system(operation: "receive conntrack dump", errno: errno)
      }
      try forEachMessage(count: n) { nlh in
        let h = nlh.pointee
        guard h.nlmsg_seq == seq else { return }
        switch Int32(h.nlmsg_type) {
        case NLMSG_DONE:
          done = true
        case NLMSG_ERROR:
          let err = CT.errorCode(nlh)
          if err != 0 { throw NFTError.system(operation: "dump conntrack table", errno: -err) }
          done = true
        default:
          if let flow = CT.parseFlow(nlh) { each(flow) }
        }
      }
    }
  }

  /// Sends one `IPCTNL_MSG_CT_DELETE` per flow in a single `send` and returns how many the
  /// kernel acknowledged. ENOENT (expired meanwhile, or replaced: the id differs) is not an
  /// error.
  func deleteConntrack(_ flows: ArraySlice<ConntrackFlow>) throws -> Int {
    guard !flows.isEmpty else { return 0 }
    var buf = [UInt8](repeating: 0, count: flows.count * 192)
    let first = reserveSeq(flows.count)
    let len: Int = buf.withUnsafeMutableBytes { raw in
      var off = 0
      var seq = first
      for flow in flows {
        let nlh = CT.header(
          raw.baseAddress! + off, type: IPCTNL_MSG_CT_DELETE, flags: NLM_F_ACK,
          family: flow.family, seq: seq)
        CT.putTuple(nlh, CTA_TUPLE_ORIG, flow.original, protocolNumber: flow.protocolNumber)
        if flow.zone != 0 { mnl_attr_put_u16(nlh, CT.attr(CTA_ZONE), flow.zone.bigEndian) }
        if let id = flow.id { mnl_attr_put_u32(nlh, CT.attr(CTA_ID), id.bigEndian) }
        off += (Int(nlh.pointee.nlmsg_len) + 3) & ~3
        seq &+= 1
      }
      return off
    }
    try sendRaw(buf, count: len, what: "conntrack delete requests")

    let expected = first...(first &+ UInt32(flows.count - 1))
    var answered = 0
    var deleted = 0
    var failure: Int32 = 0
    while answered < flows.count {
      let n = receive(wait: true, timeoutMs: 5000)
      if n < 0 {
        let e = errno
        if e == EINTR { continue }
        throw NFTError.system(
          operation: "wait for conntrack delete acknowledgements (\(answered) of \(flows.count))",
          errno: e == EAGAIN ? ETIMEDOUT : e)
      }
      forEachMessage(count: n) { nlh in
        let h = nlh.pointee
        guard h.nlmsg_type == UInt16(NLMSG_ERROR), expected.contains(h.nlmsg_seq) else { return }
        answered += 1
        let err = CT.errorCode(nlh)
        if err == 0 {
          deleted += 1
        } else if err != -ENOENT && failure == 0 {
          failure = -err
        }
      }
    }
    if failure != 0 {
      throw NFTError.system(operation: "delete conntrack entries", errno: failure)
    }
    return deleted
  }

  private func sendRaw(_ buf: [UInt8], count: Int, what: String) throws {
    let sent = buf.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, count, 0) }
    if sent < 0 { throw NFTError.system(operation: "send \(what)", errno: errno) }
  }
}

/// Encoding and decoding of ctnetlink messages.
private enum CT {
  static let nlaTypeMask = 0x3fff
  static let extraHeader = MemoryLayout<nfgenmsg>.size

  static func attr(_ t: ctattr_type) -> UInt16 { UInt16(t.rawValue) }
  static func attr(_ t: ctattr_tuple) -> UInt16 { UInt16(t.rawValue) }
  static func attr(_ t: ctattr_ip) -> UInt16 { UInt16(t.rawValue) }
  static func attr(_ t: ctattr_l4proto) -> UInt16 { UInt16(t.rawValue) }
  static func attr(_ t: ctattr_filter) -> UInt16 { UInt16(t.rawValue) }

  static func header(
    _ at: UnsafeMutableRawPointer, type: cntl_msg_types, flags: Int32, family: IPAddress.Family,
    seq: UInt32
  ) -> UnsafeMutablePointer<nlmsghdr> {
    let nlh = mnl_nlmsg_put_header(at)!
    nlh.pointee.nlmsg_type = UInt16(NFNL_SUBSYS_CTNETLINK << 8) | UInt16(type.rawValue)
    nlh.pointee.nlmsg_flags = UInt16(NLM_F_REQUEST | flags)
    nlh.pointee.nlmsg_seq = seq
    let g = mnl_nlmsg_put_extra_header(nlh, extraHeader)!.assumingMemoryBound(to: nfgenmsg.self)
    g.pointee.nfgen_family = UInt8(family == .ipv4 ? AF_INET : AF_INET6)
    g.pointee.version = UInt8(NFNETLINK_V0)
    g.pointee.res_id = 0
    return nlh
  }

  static func putTuple(
    _ nlh: UnsafeMutablePointer<nlmsghdr>, _ which: ctattr_type, _ t: ConntrackTuple,
    protocolNumber: UInt8
  ) {
    let tuple = mnl_attr_nest_start(nlh, attr(which))
    let ip = mnl_attr_nest_start(nlh, attr(CTA_TUPLE_IP))
    let v4 = t.source.family == .ipv4
    putAddress(nlh, attr(v4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC), t.source)
    putAddress(nlh, attr(v4 ? CTA_IP_V4_DST : CTA_IP_V6_DST), t.destination)
    mnl_attr_nest_end(nlh, ip)
    let proto = mnl_attr_nest_start(nlh, attr(CTA_TUPLE_PROTO))
    mnl_attr_put_u8(nlh, attr(CTA_PROTO_NUM), protocolNumber)
    mnl_attr_put_u16(nlh, attr(CTA_PROTO_SRC_PORT), t.sourcePort.bigEndian)
    mnl_attr_put_u16(nlh, attr(CTA_PROTO_DST_PORT), t.destinationPort.bigEndian)
    mnl_attr_nest_end(nlh, proto)
    mnl_attr_nest_end(nlh, tuple)
  }

  static func putAddress(_ nlh: UnsafeMutablePointer<nlmsghdr>, _ type: UInt16, _ a: IPAddress) {
    let bytes = a.bytes
    bytes.withUnsafeBytes { mnl_attr_put(nlh, type, bytes.count, $0.baseAddress) }
  }

  static func errorCode(_ nlh: UnsafePointer<nlmsghdr>) -> Int32 {
    UnsafeRawPointer(nlh).advanced(by: MemoryLayout<nlmsghdr>.size).loadUnaligned(as: Int32.self)
  }

  // MARK: decoding

  /// The flow of one `IPCTNL_MSG_CT_NEW` dump message, or nil for anything else.
  static func parseFlow(_ nlh: UnsafePointer<nlmsghdr>) -> ConntrackFlow? {
    let h = nlh.pointee
    guard h.nlmsg_type >> 8 == UInt16(NFNL_SUBSYS_CTNETLINK),
      h.nlmsg_type & 0xff == UInt16(IPCTNL_MSG_CT_NEW.rawValue)
    else { return nil }
    let headers = MemoryLayout<nlmsghdr>.size + ((extraHeader + 3) & ~3)
    let total = Int(h.nlmsg_len)
    guard total >= headers else { return nil }
    let payload = UnsafeRawBufferPointer(
      start: UnsafeRawPointer(nlh).advanced(by: headers), count: total - headers)
    var original: (ConntrackTuple, UInt8)?
    var reply: (ConntrackTuple, UInt8)?
    var zone: UInt16 = 0
    var id: UInt32?
    forEachAttribute(payload) { type, value in
      switch type {
      case Int(CTA_TUPLE_ORIG.rawValue): original = tuple(value)
      case Int(CTA_TUPLE_REPLY.rawValue): reply = tuple(value)
      case Int(CTA_ZONE.rawValue) where value.count >= 2:
        zone = UInt16(bigEndian: value.loadUnaligned(as: UInt16.self))
      case Int(CTA_ID.rawValue) where value.count >= 4:
        id = UInt32(bigEndian: value.loadUnaligned(as: UInt32.self))
      default: break
      }
    }
    guard let (o, proto) = original, let (r, _) = reply else { return nil }
    return ConntrackFlow(protocolNumber: proto, original: o, reply: r, zone: zone, id: id)
  }

  /// A tuple and its protocol number.
  static func tuple(_ b: UnsafeRawBufferPointer) -> (ConntrackTuple, UInt8)? {
    var src: IPAddress?
    var dst: IPAddress?
    var sport: UInt16 = 0
    var dport: UInt16 = 0
    var proto: UInt8?
    forEachAttribute(b) { type, value in
      switch type {
      case Int(CTA_TUPLE_IP.rawValue):
        forEachAttribute(value) { t, v in
          switch t {
          case Int(CTA_IP_V4_SRC.rawValue), Int(CTA_IP_V6_SRC.rawValue): src = address(v)
          case Int(CTA_IP_V4_DST.rawValue), Int(CTA_IP_V6_DST.rawValue): dst = address(v)
          default: break
          }
        }
      case Int(CTA_TUPLE_PROTO.rawValue):
        forEachAttribute(value) { t, v in
          switch t {
          case Int(CTA_PROTO_NUM.rawValue) where v.count >= 1: proto = v[0]
          case Int(CTA_PROTO_SRC_PORT.rawValue) where v.count >= 2:
            sport = UInt16(bigEndian: v.loadUnaligned(as: UInt16.self))
          case Int(CTA_PROTO_DST_PORT.rawValue) where v.count >= 2:
            dport = UInt16(bigEndian: v.loadUnaligned(as: UInt16.self))
          default: break
          }
        }
      default: break
      }
    }
    guard let src, let dst, let proto, src.family == dst.family else { return nil }
    return (
      ConntrackTuple(source: src, destination: dst, sourcePort: sport, destinationPort: dport),
      proto
    )
  }

  static func address(_ v: UnsafeRawBufferPointer) -> IPAddress? {
    switch v.count {
    case 4:
      return .v4(UInt32(bigEndian: v.loadUnaligned(as: UInt32.self)))
    case 16:
      return .v6(
        UInt64(bigEndian: v.loadUnaligned(as: UInt64.self)),
        UInt64(bigEndian: v.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
    default:
      return nil
    }
  }

  /// Calls `body` with the type (flags stripped) and payload of every well-formed attribute.
  static func forEachAttribute(
    _ b: UnsafeRawBufferPointer, _ body: (Int, UnsafeRawBufferPointer) -> Void
  ) {
    var off = 0
    while off + 4 <= b.count {
      let len = Int(b.loadUnaligned(fromByteOffset: off, as: UInt16.self))
      let type = Int(b.loadUnaligned(fromByteOffset: off + 2, as: UInt16.self)) & nlaTypeMask
      guard len >= 4, off + len <= b.count else { return }
      body(type, UnsafeRawBufferPointer(rebasing: b[(off + 4)..<(off + len)]))
      off += (len + 3) & ~3
    }
  }
}
