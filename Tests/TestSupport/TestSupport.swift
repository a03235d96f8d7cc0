import Foundation

/// Output of a finished child process.
public struct CommandResult: Sendable {
  public var status: Int32
  public var stdout: String
  public var stderr: String
}

public struct CommandError: Error, CustomStringConvertible {
  public var command: [String]
  public var result: CommandResult
  public var description: String {
    "\(command.joined(separator: " ")) exited \(result.status): \(result.stderr)"
  }
}

/// Runs a program (looked up in PATH) and waits for it; stdin is fed from `input`.
@discardableResult
public func runCommand(_ args: [String], input: String? = nil, check: Bool = true) throws
  -> CommandResult
{
  let p = Process()
  p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
  p.arguments = args
  let outPipe = Pipe()
  let errPipe = Pipe()
  let inPipe = Pipe()
  p.standardOutput = outPipe
  p.standardError = errPipe
  p.standardInput = inPipe
  try p.run()
  // Drain stderr and feed stdin on other threads so large outputs cannot deadlock the child.
  let group = DispatchGroup()
  let errBox = DataBox()
  DispatchQueue.global().async(group: group) {
    errBox.data = errPipe.fileHandleForReading.readDataToEndOfFile()
  }
  let inHandle = inPipe.fileHandleForWriting
  let inputData = input.map { Data($0.utf8) }
  DispatchQueue.global().async(group: group) {
    if let inputData { try? inHandle.write(contentsOf: inputData) }
    try? inHandle.close()
  }
  let outData = outPipe.fileHandleForReading.readDataToEndOfFile()
  p.waitUntilExit()
  group.wait()
  let errData = errBox.data
  let result = CommandResult(
    status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
    stderr: String(decoding: errData, as: UTF8.self))
  if check && result.status != 0 { throw CommandError(command: args, result: result) }
  return result
}

/// Whether kernel tests (network namespaces, nftables) run here.
///
/// They need root. Outside CI a non-root run skips them; under `CI=true` they always run, so a
/// CI run without root fails instead of skipping silently.
public enum KernelTests {
  public static let isRoot = getuid() == 0
  public static let inCI =
    ProcessInfo.processInfo.environment["CI"].map { !$0.isEmpty && $0 != "false" } ?? false
  public static let enabled = isRoot || inCI
}

/// A named network namespace created for one test (`ip netns add`), deleted by `delete()` or
/// when the value is released. Nothing is ever done in the caller's own namespace.
public final class NetNS: @unchecked Sendable {
  public let name: String
  private var deleted = false
  private let lock = NSLock()

  private static let counter = Counter()

  public init(prefix: String = "nftp") throws {
    let n = NetNS.counter.next()
    name = "\(prefix)-\(getpid())-\(n)"
    try runCommand(["ip", "netns", "add", name])
    try runCommand(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"])
  }

  /// Path of the namespace file, usable with `setns(2)`.
  public var path: String { "/var/run/netns/\(name)" }

  /// Runs a command inside the namespace.
  @discardableResult
  public func exec(_ args: [String], input: String? = nil, check: Bool = true) throws
    -> CommandResult
  {
    try runCommand(["ip", "netns", "exec", name] + args, input: input, check: check)
  }

  /// Loads an `nft -f` script into the namespace.
  public func nftLoad(_ script: String) throws {
    try exec(["nft", "-f", "-"], input: script)
  }

  /// `nft list ruleset` inside the namespace.
  public func nftListRuleset() throws -> String {
    try exec(["nft", "list", "ruleset"]).stdout
  }

  public func delete() {
    lock.lock()
    defer { lock.unlock() }
    if deleted { return }
    deleted = true
    _ = try? runCommand(["ip", "netns", "delete", name], check: false)
  }

  deinit { delete() }
}

final class Counter: @unchecked Sendable {
  private var value = 0
  private let lock = NSLock()
  func next() -> Int {
    lock.lock()
    defer { lock.unlock() }
    value += 1
    return value
  }
}

final class DataBox: @unchecked Sendable {
  var data = Data()
}
