import Foundation

/// Supplies the `Authorization` header: a fixed token, a token file re-read every
/// `refreshInterval` and after a 401 (service-account tokens rotate), or basic credentials.
actor CredentialSource {
  private let staticToken: String?
  private let tokenFile: String?
  private let basic: String?
  private let refreshInterval: Duration
  private var cached: String?
  private var readAt: ContinuousClock.Instant?

  init(config: KubeConfig, refreshInterval: Duration = .seconds(60)) {
    staticToken = config.token
    tokenFile = config.tokenFile
    if let user = config.username {
      basic = Data("\(user):\(config.password ?? "")".utf8).base64EncodedString()
    } else {
      basic = nil
    }
    self.refreshInterval = refreshInterval
  }

  /// The header value, or nil for anonymous or certificate-only access.
  func authorization() throws -> String? {
    if let tokenFile {
      let now = ContinuousClock.now
      if cached == nil || readAt.map({ now - $0 >= refreshInterval }) ?? true {
        guard let data = FileManager.default.contents(atPath: tokenFile) else {
          // Keep a token read before: the file may be mid-rotation.
          if let cached { return "Bearer \(cached)" }
          throw KubeConfigError(file: tokenFile, field: "token", message: "cannot read token file")
        }
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(
          in: .whitespacesAndNewlines)
        cached = token.isEmpty ? (cached ?? staticToken) : token
        readAt = now
      }
      if let cached { return "Bearer \(cached)" }
    }
    if let staticToken { return "Bearer \(staticToken)" }
    if let basic { return "Basic \(basic)" }
    return nil
  }

  /// Forces the next `authorization()` to re-read the token file (after a 401).
  /// Returns whether re-reading can change anything.
  func invalidate() -> Bool {
    guard tokenFile != nil else { return false }
    readAt = nil
    return true
  }
}
