import CNetfilter
import NFTables

#if canImport(Glibc)
  import Glibc
#endif

/// Owns an mnl netlink socket (NETLINK_NETFILTER), bound to the network namespace it was
/// created in.
final class NetlinkSocket {
  private let nl: OpaquePointer
  let portid: UInt32
  private var seq: UInt32
  private var receiveBuffer = [UInt8](repeating: 0, count: 1 << 20)

  /// Opens the socket in the namespace at `namespacePath` (e.g. `/var/run/netns/NAME`), or in
  /// the caller's namespace when nil.
  init(namespacePath: String?) throws {
    let sock: OpaquePointer
    if let namespacePath {
      sock = try NetlinkSocket.openInNamespace(namespacePath)
    } else {
      guard let s = mnl_socket_open(NETLINK_NETFILTER) else {
        throw NFTError.system(operation: "open netlink socket", errno: errno)
      }
      sock = s
    }
    nl = sock
    guard mnl_socket_bind(nl, 0, pid_t(MNL_SOCKET_AUTOPID)) == 0 else {
      let e = errno
      mnl_socket_close(sock)
      throw NFTError.system(operation: "bind netlink socket", errno: e)
    }
    portid = mnl_socket_get_portid(nl)
    seq = UInt32(truncatingIfNeeded: time(nil))
    var one: Int32 = 1
    // Errors carry only the header of the failed message (its sequence number is all we need).
    _ = setsockopt(fd, Int32(nftp_sol_netlink()), nftp_netlink_cap_ack(), &one, socklen_t(4))
    _ = setsockopt(fd, Int32(nftp_sol_netlink()), nftp_netlink_ext_ack(), &one, socklen_t(4))
  }

  deinit { mnl_socket_close(nl) }

  var fd: Int32 { mnl_socket_get_fd(nl) }

  /// Reserves `count` consecutive sequence numbers and returns the first.
  func reserveSeq(_ count: Int) -> UInt32 {
    let first = seq
    seq &+= UInt32(count)
    return first
  }

  // MARK: namespaces

  private final class OpenBox: @unchecked Sendable {
    let path: String
    var socket: OpaquePointer?
    var failure: (String, Int32)?
    init(path: String) { self.path = path }
  }

  /// Creates the socket on a dedicated thread that enters the namespace with `setns` and goes
  /// back before exiting; the socket stays bound to the namespace it was created in.
  private static func openInNamespace(_ path: String) throws -> OpaquePointer {
    let box = OpenBox(path: path)
    var thread = pthread_t()
    let arg = Unmanaged.passRetained(box).toOpaque()
    let rc = pthread_create(
      &thread, nil,
      { raw in
        let box = Unmanaged<OpenBox>.fromOpaque(raw!).takeRetainedValue()
        let target = open(box.path, O_RDONLY | O_CLOEXEC)
        guard target >= 0 else {
          box.failure = ("open network namespace \(box.path)", errno)
          return nil
        }
        defer { close(target) }
        let original = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
        guard original >= 0 else {
          box.failure = ("open own network namespace", errno)
          return nil
        }
        defer { close(original) }
        guard nftp_setns(target) == 0 else {
          box.failure = ("enter network namespace \(box.path)", errno)
          return nil
        }
        box.socket = mnl_socket_open(NETLINK_NETFILTER)
        if box.socket == nil { box.failure = ("open netlink socket in \(box.path)", errno) }
        if nftp_setns(original) != 0 {
          // The thread exits right away; nothing else runs in it.
          box.failure = box.failure ?? ("return from network namespace", errno)
        }
        return nil
      }, arg)
    guard rc == 0 else {
      Unmanaged<OpenBox>.fromOpaque(arg).release()
      throw NFTError.system(operation: "start namespace thread", errno: rc)
    }
    pthread_join(thread, nil)
    if let (op, e) = box.failure {
      if let s = box.socket { mnl_socket_close(s) }
      throw NFTError.system(operation: op, errno: e)
    }
    return box.socket!
  }

  // MARK: buffers

  private func setBuffer(_ option: Int32, _ plain: Int32, bytes: Int) {
    var v = Int32(clamping: bytes)
    if setsockopt(fd, SOL_SOCKET, option, &v, socklen_t(4)) != 0 {
      // Without CAP_NET_ADMIN only the capped variant works.
      _ = setsockopt(fd, SOL_SOCKET, plain, &v, socklen_t(4))
    }
  }

  // MARK: batches

  /// One response to a batch message: `error` 0 is an ACK.
  struct Response {
    var seq: UInt32
    var error: Int32
  }

  /// Sends a batch in one `sendmsg` (the kernel processes a batch only as a whole) and collects
  /// the responses to the sequence numbers in `expected`.
  func send(_ batch: NLBatch, expected: ClosedRange<UInt32>?) throws -> [Response] {
    let total = batch.byteCount
    setBuffer(Int32(nftp_so_sndbufforce()), SO_SNDBUF, bytes: total + 64 * 1024)
    // Each ACK takes roughly a small skb in the receive queue until we read it.
    setBuffer(
      Int32(nftp_so_rcvbufforce()), SO_RCVBUF,
      bytes: max(1 << 20, batch.messageCount * 1024 + 64 * 1024))
    var addr = sockaddr_nl()
    addr.nl_family = sa_family_t(AF_NETLINK)
    let sent: Int = batch.withIovecs { iov in
      var iov = iov
      return iov.withUnsafeMutableBufferPointer { iovp in
        withUnsafeMutablePointer(to: &addr) { ap in
          var msg = msghdr()
          msg.msg_name = UnsafeMutableRawPointer(ap)
          msg.msg_namelen = socklen_t(MemoryLayout<sockaddr_nl>.size)
          msg.msg_iov = iovp.baseAddress
          msg.msg_iovlen = iovp.count
          return sendmsg(fd, &msg, 0)
        }
      }
    }
    if sent < 0 {
      throw NFTError.system(operation: "send netlink batch (\(total) bytes)", errno: errno)
    }
    guard let expected else { return [] }
    return try collect(expected)
  }

  /// Reads responses until every sequence number in `expected` is answered or an error arrived
  /// and nothing more is queued. The kernel handles a batch synchronously inside `sendmsg`, so
  /// all responses are normally queued already.
  private func collect(_ expected: ClosedRange<UInt32>) throws -> [Response] {
    var out: [Response] = []
    var answered = 0
    var sawError = false
    let want = expected.count
    while answered < want {
      let n = receive(wait: !sawError && answered < want, timeoutMs: 5000)
      if n < 0 {
        let e = errno
        if e == EAGAIN || e == EWOULDBLOCK {
          if sawError { break }
          throw NFTError.system(
            operation: "wait for acknowledgements (\(answered) of \(want) received)",
            errno: ETIMEDOUT)
        }
        if e == EINTR { continue }
        throw NFTError.system(operation: "receive acknowledgements", errno: e)
      }
      forEachMessage(count: n) { nlh in
        let h = nlh.pointee
        guard h.nlmsg_type == UInt16(NLMSG_ERROR) else { return }
        let err = UnsafeRawPointer(nlh).advanced(by: MemoryLayout<nlmsghdr>.size).loadUnaligned(
          as: Int32.self)
        out.append(Response(seq: h.nlmsg_seq, error: err))
        if expected.contains(h.nlmsg_seq) { answered += 1 }
        if err != 0 { sawError = true }
      }
    }
    return out
  }

  /// One `recv`; waits up to `timeoutMs` for data when `wait`, otherwise returns at once.
  func receive(wait: Bool, timeoutMs: Int32) -> Int {
    if wait {
      var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
      let r = poll(&p, 1, timeoutMs)
      if r == 0 {
        errno = EAGAIN
        return -1
      }
    }
    let cap = receiveBuffer.count
    return receiveBuffer.withUnsafeMutableBytes {
      recv(fd, $0.baseAddress, cap, Int32(MSG_DONTWAIT))
    }
  }

  func forEachMessage(count n: Int, _ body: (UnsafePointer<nlmsghdr>) throws -> Void)
    rethrows
  {
    try receiveBuffer.withUnsafeBytes { raw in
      var off = 0
      let hdr = MemoryLayout<nlmsghdr>.size
      while off + hdr <= n {
        let len = Int(raw.loadUnaligned(fromByteOffset: off, as: UInt32.self))
        guard len >= hdr, off + len <= n else { break }
        let p = raw.baseAddress!.advanced(by: off).assumingMemoryBound(to: nlmsghdr.self)
        try body(p)
        off += (len + 3) & ~3
      }
    }
  }

  // MARK: requests and dumps

  /// A dump was interrupted by a concurrent commit (`NLM_F_DUMP_INTR`); retry.
  struct DumpInterrupted: Error {}

  /// The GET requests nftproxy makes.
  enum Request {
    case generation, tables, sets, elements, chains, rules

    var type: nf_tables_msg_types {
      switch self {
      case .generation: return NFT_MSG_GETGEN
      case .tables: return NFT_MSG_GETTABLE
      case .sets: return NFT_MSG_GETSET
      case .elements: return NFT_MSG_GETSETELEM
      case .chains: return NFT_MSG_GETCHAIN
      case .rules: return NFT_MSG_GETRULE
      }
    }
  }

  /// Sends one request (a dump when `dump`) and hands every reply message to `each`.
  func request(
    _ request: Request, family: UInt16, dump: Bool,
    payload: (UnsafeMutablePointer<nlmsghdr>) -> Void = { _ in },
    each: (UnsafePointer<nlmsghdr>) throws -> Void
  ) throws {
    var buf = [CChar](repeating: 0, count: 64 * 1024)
    let s = reserveSeq(1)
    let len: Int = buf.withUnsafeMutableBufferPointer { b in
      let flags = dump ? NLM_F_DUMP : NLM_F_ACK
      let nlh = nftnl_nlmsg_build_hdr(
        b.baseAddress, UInt16(request.type.rawValue), family, UInt16(flags), s)!
      payload(nlh)
      return Int(nlh.pointee.nlmsg_len)
    }
    let sent = buf.withUnsafeBytes { mnl_socket_sendto(nl, $0.baseAddress, len) }
    if sent < 0 { throw NFTError.system(operation: "send netlink request", errno: errno) }
    var done = false
    var interrupted = false
    while !done {
      let n = receive(wait: true, timeoutMs: 60_000)
      if n < 0 {
        if errno == EINTR { continue }
        throw NFTError.system(operation: "receive netlink reply", errno: errno)
      }
      try forEachMessage(count: n) { nlh in
        let h = nlh.pointee
        guard h.nlmsg_seq == s else { return }
        if Int32(h.nlmsg_flags) & NLM_F_DUMP_INTR != 0 { interrupted = true }
        switch Int32(h.nlmsg_type) {
        case NLMSG_DONE:
          done = true
        case NLMSG_ERROR:
          let err = UnsafeRawPointer(nlh).advanced(by: MemoryLayout<nlmsghdr>.size).loadUnaligned(
            as: Int32.self)
          if err != 0 { throw NFTError.system(operation: "netlink request", errno: -err) }
          done = true
        default:
          // A plain GET answers with one message, then the requested ACK.
          try each(nlh)
        }
      }
    }
    if interrupted { throw DumpInterrupted() }
  }
}
