import Foundation
import IPAddr
import NFTNetlink
import ProxyCore
import ProxyDaemon

/// Deletes the UDP conntrack entries a ``StaleUDPFilter`` marks stale, over ctnetlink.
enum StaleUDPCleanup {
  static func run(
    _ cleaner: ConntrackCleaner, _ filter: StaleUDPFilter, families: some Sequence<IPAddress.Family>
  ) throws -> ConntrackCleanupReport {
    try cleaner.clean(families: families) { flow in
      filter.isStale(
        originalDestination: .init(flow.original.destination, flow.original.destinationPort),
        replySource: .init(flow.reply.source, flow.reply.sourcePort))
    }
  }

  /// `run --once`: no earlier state is known, so every UDP frontend is checked. A failure is a
  /// warning; the rules are in place.
  static func afterOneShot(_ resolved: ResolvedCluster, namespace: String?) {
    let filter = StaleUDPFlows.filter(previous: nil, current: resolved)
    guard !filter.isEmpty else { return }
    do {
      let report = try run(
        ConntrackCleaner(namespacePath: namespace), filter, families: filter.families)
      if report.deleted > 0 {
        printError("nftproxy: deleted \(report.deleted) stale UDP conntrack entries")
      }
    } catch {
      printError("warning: UDP conntrack cleanup failed (the rules are applied): \(error)")
    }
  }
}

/// The ctnetlink cleaner as the daemon's ``StaleFlowCleaner``.
final class NetlinkStaleFlowCleaner: StaleFlowCleaner, @unchecked Sendable {
  private let cleaner: ConntrackCleaner
  private let lock = NSLock()

  init(namespacePath: String?) throws {
    cleaner = try ConntrackCleaner(namespacePath: namespacePath)
  }

  func clean(_ filter: StaleUDPFilter, family: IPAddress.Family) async throws -> Int {
    try lock.withLock { try StaleUDPCleanup.run(cleaner, filter, families: [family]).deleted }
  }
}
