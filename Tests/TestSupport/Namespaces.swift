import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// Running code inside a network namespace without touching the caller's thread.
///
/// A socket belongs to the namespace it was created in for its whole life, so only `socket(2)`
/// itself has to run inside the namespace; `bind`, `connect`, `accept`, `send` and `recv` work
/// from any thread afterwards. `inNamespace` runs a closure on a fresh thread that entered the
/// namespace with `setns(2)` and exits when the closure returns, so no pooled thread (Swift
/// concurrency, Dispatch) ever changes namespace.
public enum Namespaces {
  public struct Failure: Error, CustomStringConvertible {
    public var description: String
  }

  private typealias SetnsFunction = @convention(c) (Int32, Int32) -> Int32

  /// `setns(2)`, looked up at run time: Swift's Glibc module leaves out the `_GNU_SOURCE`
  /// declarations.
  private static func setns(_ fd: Int32) -> Int32 {
    guard let symbol = dlsym(nil, "setns") else {  // nil is RTLD_DEFAULT
      errno = ENOSYS
      return -1
    }
    let function = unsafeBitCast(symbol, to: SetnsFunction.self)
    return function(fd, 0x4000_0000)  // CLONE_NEWNET
  }

  /// Runs `body` on a new thread inside the network namespace at `path` (for example
  /// `/var/run/netns/NAME`) and returns its result. The calling thread stays where it is.
  public static func run<T: Sendable>(in path: String, _ body: @escaping @Sendable () throws -> T)
    throws -> T
  {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    let thread = Thread {
      defer { done.signal() }
      let fd = open(path, O_RDONLY | O_CLOEXEC)
      guard fd >= 0 else {
        box.result = .failure(
          Failure(description: "open \(path): \(String(cString: strerror(errno)))"))
        return
      }
      let rc = setns(fd)
      let err = errno
      close(fd)
      guard rc == 0 else {
        box.result = .failure(
          Failure(description: "setns \(path): \(String(cString: strerror(err)))"))
        return
      }
      // The thread ends after the closure: it never goes back to serve anything else.
      box.result = Result { try body() }
    }
    thread.start()
    done.wait()
    guard let result = box.result else {
      throw Failure(description: "namespace thread ended without a result")
    }
    return try result.get()
  }

  /// A socket created inside the namespace at `path`.
  public static func socket(in path: String, domain: Int32, type: Int32, protocol proto: Int32)
    throws -> Int32
  {
    try run(in: path) {
      let fd = Glibc.socket(domain, type | Int32(SOCK_CLOEXEC.rawValue), proto)
      if fd < 0 { throw SocketError(errno: errno, call: "socket") }
      return fd
    }
  }
}

/// A failed socket call with its errno.
public struct SocketError: Error, CustomStringConvertible {
  public var errno: Int32
  public var call: String
  public init(errno: Int32, call: String) {
    self.errno = errno
    self.call = call
  }
  public var description: String { "\(call): \(String(cString: strerror(errno))) (errno \(errno))" }
}

extension NetNS {
  /// Runs `body` on a thread inside this namespace (see `Namespaces.run`).
  public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) throws -> T {
    try Namespaces.run(in: path, body)
  }

  /// A socket that lives in this namespace.
  public func socket(domain: Int32, type: Int32, protocol proto: Int32 = 0) throws -> Int32 {
    try Namespaces.socket(in: path, domain: domain, type: type, protocol: proto)
  }
}

private final class ResultBox<T>: @unchecked Sendable {
  var result: Result<T, Error>?
}
