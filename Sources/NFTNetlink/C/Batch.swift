import CNetfilter
import NFTables

#if canImport(Glibc)
  import Glibc
#endif

/// Owns an `nftnl_batch`: the pages one transaction (BEGIN … END) is written into.
final class NLBatch {
  /// Page size and overrun: every single message must fit in the overrun, and element messages
  /// are capped well below it by the encoder.
  static let pageSize: UInt32 = 256 * 1024
  static let overrunSize: UInt32 = 256 * 1024

  let ptr: OpaquePointer
  /// Number of object messages (without BEGIN and END).
  private(set) var messageCount = 0

  init() throws {
    guard let p = nftnl_batch_alloc(NLBatch.pageSize, NLBatch.overrunSize) else {
      throw NFTError.system(operation: "allocate netlink batch", errno: ENOMEM)
    }
    ptr = p
  }

  deinit { nftnl_batch_free(ptr) }

  private var buffer: UnsafeMutablePointer<CChar> {
    nftnl_batch_buffer(ptr).assumingMemoryBound(to: CChar.self)
  }

  private func update() throws {
    if nftnl_batch_update(ptr) < 0 {
      throw NFTError.system(operation: "grow netlink batch", errno: errno)
    }
  }

  /// `NFNL_MSG_BATCH_BEGIN`; with `genid` the kernel rejects the whole batch (ERESTART) when the
  /// ruleset generation is no longer `genid`, i.e. someone else committed in between.
  func begin(seq: UInt32, genid: UInt32?) throws {
    let nlh = nftnl_batch_begin(buffer, seq)!
    if let genid { mnl_attr_put_u32(nlh, UInt16(NFNL_BATCH_GENID.rawValue), genid.bigEndian) }
    try update()
  }

  func end(seq: UInt32) throws {
    _ = nftnl_batch_end(buffer, seq)
    try update()
  }

  private func header(
    _ type: nf_tables_msg_types, _ family: TableFamily, _ flags: Int32, _ seq: UInt32
  )
    -> UnsafeMutablePointer<nlmsghdr>
  {
    nftnl_nlmsg_build_hdr(buffer, UInt16(type.rawValue), nfproto(family), UInt16(flags), seq)!
  }

  /// Appends one object message, with an ACK requested.
  func add(_ m: K.Message, seq: UInt32) throws {
    let ack = NLM_F_ACK
    let create = NLM_F_CREATE | NLM_F_ACK
    switch m {
    case .newTable(let t):
      NLTable(t).payload(header(NFT_MSG_NEWTABLE, t.family, create, seq))
    case .delTable(let t):
      NLTable(t).payload(header(NFT_MSG_DELTABLE, t.family, ack, seq))
    case .newChain(let c):
      NLChain(c).payload(header(NFT_MSG_NEWCHAIN, c.family, create, seq))
    case .delChain(let c):
      NLChain(c, nameOnly: true).payload(header(NFT_MSG_DELCHAIN, c.family, ack, seq))
    case .flushChain(let c):
      NLRule(table: c.table, chain: c.name).payload(header(NFT_MSG_DELRULE, c.family, ack, seq))
    case .newRule(let r):
      NLRule(r).payload(header(NFT_MSG_NEWRULE, r.family, create | NLM_F_APPEND, seq))
    case .newSet(let s):
      NLSet(definition: s).payload(header(NFT_MSG_NEWSET, s.family, create, seq))
    case .delSet(let s):
      NLSet(reference: s).payload(header(NFT_MSG_DELSET, s.family, ack, seq))
    case .flushSet(let s):
      NLSet(reference: s).elementsPayload(header(NFT_MSG_DELSETELEM, s.family, ack, seq))
    case .newElements(let s, let elements):
      let set = NLSet(reference: s)
      for e in elements { set.addElement(e) }
      set.elementsPayload(header(NFT_MSG_NEWSETELEM, s.family, create, seq))
    case .delElements(let s, let elements):
      let set = NLSet(reference: s)
      for e in elements { set.addElement(e) }
      set.elementsPayload(header(NFT_MSG_DELSETELEM, s.family, ack, seq))
    }
    try update()
    messageCount += 1
  }

  /// Total bytes of the batch, BEGIN and END included.
  var byteCount: Int {
    withIovecs { $0.reduce(0) { $0 + $1.iov_len } }
  }

  func withIovecs<R>(_ body: ([iovec]) throws -> R) rethrows -> R {
    let n = Int(nftnl_batch_iovec_len(ptr))
    var iov = [iovec](repeating: iovec(), count: n)
    iov.withUnsafeMutableBufferPointer { nftnl_batch_iovec(ptr, $0.baseAddress, UInt32(n)) }
    return try body(iov)
  }
}
