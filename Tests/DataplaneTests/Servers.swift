import Foundation
import TestSupport

#if canImport(Glibc)
  import Glibc
#endif

/// Tiny servers for every pod: each listening socket was created inside its pod's namespace and
/// answers every TCP connection, SCTP association or UDP datagram with "POD SOURCE", the pod's
/// name and the source address it saw. One thread polls all of them.
final class PodServers: @unchecked Sendable {
  private struct Listener {
    var fd: Int32
    var l4: L4
    var pod: String
  }

  private var listeners: [Listener] = []
  private var wake: [Int32] = [-1, -1]
  private var thread: Thread?
  private let done = DispatchSemaphore(value: 0)
  /// Why SCTP listeners could not be created (nil when they were).
  private(set) var sctpUnavailable: String?

  /// Listens for `pod` on `ip`:`port` with every protocol in `protocols`, inside `ns`.
  func listen(pod: String, in ns: NetNS, ip: String, port: UInt16, protocols: [L4]) throws {
    let address = SocketAddress(ip, port: port)
    for l4 in protocols {
      let fd: Int32
      do {
        fd = try ns.socket(
          domain: address.family, type: l4.socketType | Int32(SOCK_NONBLOCK.rawValue),
          protocol: l4.socketProtocol)
      } catch let error as SocketError where l4 == .sctp && error.errno == EPROTONOSUPPORT {
        sctpUnavailable = error.description
        continue
      }
      setIntOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
      if address.family == AF_INET6 { setIntOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, 1) }
      do {
        try bindSocket(fd, to: address)
        if l4 != .udp && Glibc.listen(fd, 256) != 0 {
          throw SocketError(errno: errno, call: "listen")
        }
      } catch {
        close(fd)
        throw error
      }
      listeners.append(Listener(fd: fd, l4: l4, pod: pod))
    }
  }

  /// Starts answering; call after every `listen`.
  func start() throws {
    guard pipe(&wake) == 0 else { throw SocketError(errno: errno, call: "pipe") }
    let thread = Thread { [self] in
      serve()
      done.signal()
    }
    thread.name = "dataplane-servers"
    self.thread = thread
    thread.start()
  }

  /// Stops the thread and closes every socket.
  func stop() {
    if thread != nil {
      var byte: UInt8 = 1
      _ = write(wake[1], &byte, 1)
      done.wait()
      thread = nil
    }
    for l in listeners { close(l.fd) }
    listeners = []
    for fd in wake where fd >= 0 { close(fd) }
    wake = [-1, -1]
  }

  private func serve() {
    var fds = [pollfd(fd: wake[0], events: Int16(POLLIN), revents: 0)]
    fds += listeners.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
    while true {
      let rc = poll(&fds, nfds_t(fds.count), -1)
      if rc < 0 {
        if errno == EINTR { continue }
        return
      }
      if fds[0].revents != 0 { return }
      for i in 1..<fds.count where fds[i].revents != 0 {
        fds[i].revents = 0
        let l = listeners[i - 1]
        if l.l4 == .udp { answerDatagrams(l) } else { answerConnections(l) }
      }
    }
  }

  private func answerConnections(_ l: Listener) {
    while true {
      var peer = SocketAddress()
      let conn = peer.withMutableSockaddr { accept(l.fd, $0, $1) }
      if conn < 0 { return }  // EAGAIN: nothing more pending
      let reply = Array("\(l.pod) \(peer.ipText)\n".utf8)
      _ = write(conn, reply, reply.count)
      close(conn)
    }
  }

  private func answerDatagrams(_ l: Listener) {
    var buf = [UInt8](repeating: 0, count: 512)
    while true {
      var peer = SocketAddress()
      let n = peer.withMutableSockaddr { recvfrom(l.fd, &buf, buf.count, 0, $0, $1) }
      if n < 0 { return }
      let reply = Array("\(l.pod) \(peer.ipText)\n".utf8)
      _ = peer.withSockaddr { sendto(l.fd, reply, reply.count, 0, $0, $1) }
    }
  }

  deinit { stop() }
}
