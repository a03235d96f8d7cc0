import Foundation
import TestSupport

#if canImport(Glibc)
  import Glibc
#endif

/// Transport protocols the dataplane tests speak.
enum L4: String, Sendable, CaseIterable {
  case tcp, udp, sctp

  var manifestName: String { rawValue.uppercased() }
  var socketType: Int32 { self == .udp ? Int32(SOCK_DGRAM.rawValue) : Int32(SOCK_STREAM.rawValue) }
  var socketProtocol: Int32 { self == .sctp ? Int32(IPPROTO_SCTP) : 0 }
}

/// What one request through the dataplane came back with.
enum Outcome: Equatable, Sendable, CustomStringConvertible {
  /// The server `pod` answered and saw the connection come from `source`.
  case reply(pod: String, source: String)
  /// Rejected: TCP connection refused or an ICMP port unreachable for UDP, at once.
  case refused
  /// Nothing came back before the timeout: dropped.
  case timeout
  case failed(String)

  var pod: String? {
    if case .reply(let pod, _) = self { return pod }
    return nil
  }

  var source: String? {
    if case .reply(_, let source) = self { return source }
    return nil
  }

  var description: String {
    switch self {
    case .reply(let pod, let source): "reply from \(pod) (saw source \(source))"
    case .refused: "refused"
    case .timeout: "timeout"
    case .failed(let why): "failed: \(why)"
    }
  }
}

/// A socket address built from text.
struct SocketAddress {
  var storage = sockaddr_storage()
  var length: socklen_t = 0

  var family: Int32 { Int32(storage.ss_family) }

  init(_ ip: String, port: UInt16) {
    if ip.contains(":") {
      var sin6 = sockaddr_in6()
      sin6.sin6_family = sa_family_t(AF_INET6)
      sin6.sin6_port = port.bigEndian
      precondition(inet_pton(AF_INET6, ip, &sin6.sin6_addr) == 1, "bad IPv6 address \(ip)")
      withUnsafeMutableBytes(of: &storage) { dst in
        withUnsafeBytes(of: sin6) { dst.copyMemory(from: $0) }
      }
      length = socklen_t(MemoryLayout<sockaddr_in6>.size)
    } else {
      var sin = sockaddr_in()
      sin.sin_family = sa_family_t(AF_INET)
      sin.sin_port = port.bigEndian
      precondition(inet_pton(AF_INET, ip, &sin.sin_addr) == 1, "bad IPv4 address \(ip)")
      withUnsafeMutableBytes(of: &storage) { dst in
        withUnsafeBytes(of: sin) { dst.copyMemory(from: $0) }
      }
      length = socklen_t(MemoryLayout<sockaddr_in>.size)
    }
  }

  init() {}

  /// The address part as text (port left out).
  var ipText: String {
    var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
    withUnsafeBytes(of: storage) { raw in
      if family == AF_INET6 {
        let sin6 = raw.load(as: sockaddr_in6.self)
        withUnsafeBytes(of: sin6.sin6_addr) {
          _ = inet_ntop(AF_INET6, $0.baseAddress, &buf, socklen_t(buf.count))
        }
      } else {
        let sin = raw.load(as: sockaddr_in.self)
        withUnsafeBytes(of: sin.sin_addr) {
          _ = inet_ntop(AF_INET, $0.baseAddress, &buf, socklen_t(buf.count))
        }
      }
    }
    return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
    withUnsafeBytes(of: storage) { raw in
      body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), length)
    }
  }

  mutating func withMutableSockaddr<T>(
    _ body: (UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> T
  )
    -> T
  {
    length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    var len = length
    let result = withUnsafeMutableBytes(of: &storage) { raw in
      body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), &len)
    }
    length = len
    return result
  }
}

func bindSocket(_ fd: Int32, to address: SocketAddress) throws {
  let rc = address.withSockaddr { bind(fd, $0, $1) }
  if rc != 0 { throw SocketError(errno: errno, call: "bind \(address.ipText)") }
}

func setIntOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) {
  var v = value
  _ = setsockopt(fd, level, name, &v, socklen_t(MemoryLayout<Int32>.size))
}

/// Milliseconds left until `deadline`, for poll(2).
private func millisecondsLeft(_ deadline: ContinuousClock.Instant) -> Int32 {
  let left = deadline - ContinuousClock.now
  if left <= .zero { return 0 }
  let (seconds, attoseconds) = left.components
  return Int32(seconds * 1000 + attoseconds / 1_000_000_000_000_000) + 1
}

/// Waits until `fd` has one of `events`; false on timeout.
private func waitFor(_ fd: Int32, _ events: Int16, until deadline: ContinuousClock.Instant) -> Bool
{
  while true {
    var pfd = pollfd(fd: fd, events: events, revents: 0)
    let rc = poll(&pfd, 1, millisecondsLeft(deadline))
    if rc > 0 { return true }
    if rc == 0 { return false }
    if errno != EINTR { return true }  // let the next call report the error
  }
}

/// Parses a server's reply, "POD SOURCE".
private func parseReply(_ bytes: [UInt8]) -> Outcome {
  let text = String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
  let parts = text.split(separator: " ")
  guard parts.count == 2 else { return .failed("unexpected reply '\(text)'") }
  return .reply(pod: String(parts[0]), source: String(parts[1]))
}

/// Default time to wait for an answer: long enough for any local round trip, and what tells a
/// dropped packet (timeout) from a rejected one (immediate error).
let requestTimeout: Duration = .seconds(2)

/// Sends one request from namespace `ns` (optionally from the local address `source`) to
/// `ip`:`port` and reports who answered.
func request(
  _ l4: L4, from ns: NetNS, source: String? = nil, to ip: String, port: UInt16,
  timeout: Duration = requestTimeout
) -> Outcome {
  let target = SocketAddress(ip, port: port)
  let fd: Int32
  do {
    fd = try ns.socket(
      domain: target.family, type: l4.socketType | Int32(SOCK_NONBLOCK.rawValue),
      protocol: l4.socketProtocol)
  } catch let error as SocketError {
    return .failed(error.description)
  } catch {
    return .failed("\(error)")
  }
  defer { close(fd) }
  if let source {
    do { try bindSocket(fd, to: SocketAddress(source, port: 0)) } catch {
      return .failed("\(error)")
    }
  }
  let deadline = ContinuousClock.now + timeout
  return l4 == .udp
    ? datagramExchange(fd, target: target, deadline: deadline)
    : streamExchange(fd, target: target, deadline: deadline)
}

private func streamExchange(_ fd: Int32, target: SocketAddress, deadline: ContinuousClock.Instant)
  -> Outcome
{
  let rc = target.withSockaddr { connect(fd, $0, $1) }
  if rc != 0 && errno != EINPROGRESS {
    return errno == ECONNREFUSED ? .refused : .failed(String(cString: strerror(errno)))
  }
  if rc != 0 {
    guard waitFor(fd, Int16(POLLOUT), until: deadline) else { return .timeout }
    var err: Int32 = 0
    var len = socklen_t(MemoryLayout<Int32>.size)
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
    if err == ECONNREFUSED { return .refused }
    if err != 0 { return .failed("connect: \(String(cString: strerror(err)))") }
  }
  var reply: [UInt8] = []
  var buf = [UInt8](repeating: 0, count: 512)
  while true {
    guard waitFor(fd, Int16(POLLIN), until: deadline) else { return .timeout }
    let n = read(fd, &buf, buf.count)
    if n > 0 {
      reply += buf[0..<n]
    } else if n == 0 {
      return parseReply(reply)
    } else if errno != EAGAIN && errno != EINTR {
      return errno == ECONNREFUSED || errno == ECONNRESET
        ? .refused : .failed("read: \(String(cString: strerror(errno)))")
    }
  }
}

private func datagramExchange(_ fd: Int32, target: SocketAddress, deadline: ContinuousClock.Instant)
  -> Outcome
{
  let rc = target.withSockaddr { connect(fd, $0, $1) }
  if rc != 0 { return .failed("connect: \(String(cString: strerror(errno)))") }
  return UDPExchange.roundTrip(fd, deadline: deadline)
}

enum UDPExchange {
  /// Sends one datagram on a connected UDP socket and waits for the answer.
  static func roundTrip(_ fd: Int32, deadline: ContinuousClock.Instant) -> Outcome {
    let ping = Array("ping\n".utf8)
    if send(fd, ping, ping.count, 0) < 0 {
      // EPERM: a local datagram that netfilter did not let out (a reject also drops the
      // original after sending its ICMP error, which still reaches this socket). The ICMP
      // error, or its absence, below tells a reject from a drop.
      if errno == ECONNREFUSED { return .refused }
      if errno != EPERM { return .failed("send: \(String(cString: strerror(errno)))") }
    }
    var buf = [UInt8](repeating: 0, count: 512)
    while true {
      guard waitFor(fd, Int16(POLLIN), until: deadline) else { return .timeout }
      let n = recv(fd, &buf, buf.count, 0)
      if n >= 0 { return parseReply(Array(buf[0..<n])) }
      if errno == ECONNREFUSED { return .refused }
      if errno != EAGAIN && errno != EINTR {
        return .failed("recv: \(String(cString: strerror(errno)))")
      }
    }
  }
}

/// A UDP client that keeps one socket (one source port, hence one conntrack entry) across
/// many requests.
final class UDPSession {
  let fd: Int32

  init(from ns: NetNS, to ip: String, port: UInt16) throws {
    let target = SocketAddress(ip, port: port)
    fd = try ns.socket(
      domain: target.family, type: L4.udp.socketType | Int32(SOCK_NONBLOCK.rawValue))
    let rc = target.withSockaddr { connect(fd, $0, $1) }
    if rc != 0 {
      let err = errno
      close(fd)
      throw SocketError(errno: err, call: "connect")
    }
  }

  func exchange(timeout: Duration = requestTimeout) -> Outcome {
    UDPExchange.roundTrip(fd, deadline: .now + timeout)
  }

  deinit { close(fd) }
}
