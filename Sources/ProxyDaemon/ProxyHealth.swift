import Foundation
import NIOHTTP1
import Synchronization

/// The proxy's health as kube-proxy defines it: healthy unless a queued change has waited
/// longer than the timeout (kube-proxy: 2 × `--sync-period`) without a successful sync.
///
/// Written by the sync loop, read synchronously by the HTTP handlers (`/healthz`, `/livez`,
/// health-check node ports).
public final class ProxyHealth: Sendable {
  /// How long a queued change may wait for a successful sync.
  public let timeout: Duration
  private let clock: any SyncClock

  private struct State {
    /// Monotonic time of the oldest change no successful sync has covered yet.
    var oldestPending: Duration?
    /// Wall time of the last successful sync (or of start-up, as kube-proxy does).
    var lastUpdated: Date
    var nodeEligible = true
  }

  private let state: Mutex<State>

  /// One reading of the health.
  public struct Report: Sendable, Equatable {
    public var healthy: Bool
    /// Whether this node should receive load-balancer traffic (always true: nftproxy does not
    /// yet track node deletion or the cluster-autoscaler taint).
    public var nodeEligible: Bool
    public var lastUpdated: Date
    public var currentTime: Date
  }

  public init(timeout: Duration, clock: any SyncClock) {
    self.timeout = timeout
    self.clock = clock
    self.state = Mutex(State(lastUpdated: Date()))
  }

  /// Records that a change was queued at monotonic time `at` (keeps the oldest one).
  public func queued(at: Duration) {
    state.withLock { s in
      if s.oldestPending == nil { s.oldestPending = at }
    }
  }

  /// Records a successful sync. `pendingSince` is the oldest change that arrived during the
  /// sync and is therefore not covered by it, or nil.
  public func updated(pendingSince: Duration?) {
    state.withLock { s in
      s.oldestPending = pendingSince
      s.lastUpdated = Date()
    }
  }

  /// Replaces the oldest pending change (after a failed sync put its changes back).
  public func setPending(since: Duration?) {
    state.withLock { $0.oldestPending = since }
  }

  /// Marks this node as (not) eligible for load-balancer traffic.
  public func setNodeEligible(_ eligible: Bool) {
    state.withLock { $0.nodeEligible = eligible }
  }

  /// The current health.
  public func report() -> Report {
    let now = clock.now
    return state.withLock { s in
      var healthy = true
      if let since = s.oldestPending, now - since > timeout { healthy = false }
      return Report(
        healthy: healthy, nodeEligible: s.nodeEligible, lastUpdated: s.lastUpdated,
        currentTime: Date())
    }
  }

  /// Whether the proxy is healthy now.
  public var isHealthy: Bool { report().healthy }
}

/// kube-proxy's `/healthz` and `/livez` responses.
enum HealthResponses {
  static func healthz(_ r: ProxyHealth.Report) -> HTTPResponse {
    let ok = r.healthy && r.nodeEligible
    // As kube-proxy: a healthy server reports lastUpdated = currentTime.
    let last = ok ? r.currentTime : r.lastUpdated
    let body =
      "{\"lastUpdated\": \"\(timestamp(last))\",\"currentTime\": \"\(timestamp(r.currentTime))\", \"nodeEligible\": \(r.nodeEligible)}"
    return .json(ok ? .ok : .serviceUnavailable, body)
  }

  static func livez(_ r: ProxyHealth.Report) -> HTTPResponse {
    let last = r.healthy ? r.currentTime : r.lastUpdated
    let body =
      "{\"lastUpdated\": \"\(timestamp(last))\",\"currentTime\": \"\(timestamp(r.currentTime))\"}"
    return .json(r.healthy ? .ok : .serviceUnavailable, body)
  }

  /// RFC 3339 in UTC with microseconds, e.g. `2025-01-31T12:00:00.123456Z`.
  static func timestamp(_ date: Date) -> String {
    let t = date.timeIntervalSince1970
    var secs = time_t(t.rounded(.down))
    let micros = Int(((t - t.rounded(.down)) * 1_000_000).rounded(.down))
    var parts = tm()
    gmtime_r(&secs, &parts)
    func pad(_ v: Int, _ width: Int) -> String {
      let s = String(v)
      return String(repeating: "0", count: max(0, width - s.count)) + s
    }
    return
      "\(pad(Int(parts.tm_year) + 1900, 4))-\(pad(Int(parts.tm_mon) + 1, 2))-\(pad(Int(parts.tm_mday), 2))"
      + "T\(pad(Int(parts.tm_hour), 2)):\(pad(Int(parts.tm_min), 2)):\(pad(Int(parts.tm_sec), 2))"
      + ".\(pad(micros, 6))Z"
  }
}

/// A JSON string literal (quotes and escapes).
func jsonString(_ s: String) -> String {
  var out = "\""
  for u in s.unicodeScalars {
    switch u {
    case "\"": out += "\\\""
    case "\\": out += "\\\\"
    case "\n": out += "\\n"
    case "\r": out += "\\r"
    case "\t": out += "\\t"
    default:
      if u.value < 0x20 {
        let hex = String(u.value, radix: 16)
        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
      } else {
        out.unicodeScalars.append(u)
      }
    }
  }
  return out + "\""
}
