import Foundation
import Yams

/// Where and how to reach the API server: the result of reading a kubeconfig file or the
/// in-cluster service account.
public struct KubeConfig: Sendable, Equatable {
  /// Base URL of the API server, e.g. `https://10.96.0.1:443`, without a trailing slash.
  public var server: String
  /// PEM of the CA certificate(s) trusted for the server; nil means the system's trust roots.
  public var certificateAuthorityPEM: [UInt8]?
  /// Skip server certificate verification (kubeconfig `insecure-skip-tls-verify`).
  public var insecureSkipTLSVerify: Bool
  /// PEM of the client certificate chain (mutual TLS).
  public var clientCertificatePEM: [UInt8]?
  /// PEM of the client private key.
  public var clientKeyPEM: [UInt8]?
  /// A fixed bearer token.
  public var token: String?
  /// A file holding the bearer token; re-read periodically and after a 401 (token rotation).
  public var tokenFile: String?
  /// Basic authentication (kubeconfig `username`/`password`).
  public var username: String?
  public var password: String?
  /// Where this configuration came from, for messages (`kubeconfig /path, context "x"`).
  public var source: String

  public init(
    server: String, certificateAuthorityPEM: [UInt8]? = nil, insecureSkipTLSVerify: Bool = false,
    clientCertificatePEM: [UInt8]? = nil, clientKeyPEM: [UInt8]? = nil, token: String? = nil,
    tokenFile: String? = nil, username: String? = nil, password: String? = nil,
    source: String = "explicit configuration"
  ) {
    self.server = server.hasSuffix("/") ? String(server.dropLast()) : server
    self.certificateAuthorityPEM = certificateAuthorityPEM
    self.insecureSkipTLSVerify = insecureSkipTLSVerify
    self.clientCertificatePEM = clientCertificatePEM
    self.clientKeyPEM = clientKeyPEM
    self.token = token
    self.tokenFile = tokenFile
    self.username = username
    self.password = password
    self.source = source
  }

  /// The default directory of the in-cluster service account (token, `ca.crt`).
  public static let serviceAccountDirectory = "/var/run/secrets/kubernetes.io/serviceaccount"

  /// Reads `--kubeconfig PATH` if given, else the in-cluster configuration.
  public static func resolve(kubeconfig path: String?, context: String? = nil) throws -> KubeConfig
  {
    if let path { return try load(kubeconfig: path, context: context) }
    return try inCluster()
  }

  /// The in-cluster configuration: `KUBERNETES_SERVICE_HOST`/`KUBERNETES_SERVICE_PORT`, the
  /// service-account token file (re-read when it rotates) and `ca.crt` from `directory`.
  public static func inCluster(
    environment: [String: String] = ProcessInfo.processInfo.environment,
    serviceAccountDirectory directory: String = serviceAccountDirectory
  ) throws -> KubeConfig {
    let source = "in-cluster configuration"
    guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty else {
      throw KubeConfigError(
        file: source, field: "KUBERNETES_SERVICE_HOST",
        message: "not set (not running in a pod? pass --kubeconfig)")
    }
    guard let port = environment["KUBERNETES_SERVICE_PORT"], !port.isEmpty else {
      throw KubeConfigError(file: source, field: "KUBERNETES_SERVICE_PORT", message: "not set")
    }
    guard let portNumber = Int(port), (1...65535).contains(portNumber) else {
      throw KubeConfigError(
        file: source, field: "KUBERNETES_SERVICE_PORT", message: "not a port number: \(port)")
    }
    let hostPart = host.contains(":") ? "[\(host)]" : host
    let tokenPath = (directory as NSString).appendingPathComponent("token")
    let caPath = (directory as NSString).appendingPathComponent("ca.crt")
    let token = try readFile(tokenPath, file: source, field: "service account token")
    if String(decoding: token, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
      .isEmpty
    {
      throw KubeConfigError(
        file: source, field: "service account token", message: "\(tokenPath) is empty")
    }
    let ca = try readFile(caPath, file: source, field: "service account CA")
    return KubeConfig(
      server: "https://\(hostPart):\(portNumber)", certificateAuthorityPEM: ca,
      tokenFile: tokenPath, source: source)
  }

  /// Reads a kubeconfig file: the context `context` (default `current-context`), its cluster and
  /// user. Relative file paths inside are resolved against the kubeconfig's directory.
  public static func load(kubeconfig path: String, context: String? = nil) throws -> KubeConfig {
    let data = try readFile(path, file: path, field: "kubeconfig")
    return try parse(
      yaml: String(decoding: data, as: UTF8.self), path: path, context: context)
  }

  /// Parses kubeconfig text; `path` names the file in errors and anchors relative paths.
  public static func parse(yaml: String, path: String, context: String? = nil) throws -> KubeConfig
  {
    let file: KubeConfigFile
    do {
      file = try YAMLDecoder().decode(KubeConfigFile.self, from: yaml)
    } catch let e as DecodingError {
      throw KubeConfigError(file: path, field: "", message: describeDecodingError(e))
    } catch {
      throw KubeConfigError(file: path, field: "", message: "not valid YAML: \(error)")
    }
    let baseDir = (path as NSString).deletingLastPathComponent
    func resolvePath(_ p: String) -> String {
      if p.hasPrefix("/") || baseDir.isEmpty { return p }
      return (baseDir as NSString).appendingPathComponent(p)
    }

    guard let contextName = context ?? file.currentContext, !contextName.isEmpty else {
      throw KubeConfigError(
        file: path, field: "current-context", message: "not set and no context was given")
    }
    let contextField = context == nil ? "current-context" : "context"
    guard let ctxEntry = file.contexts?.first(where: { $0.name == contextName }) else {
      throw KubeConfigError(
        file: path, field: contextField,
        message: "context \"\(contextName)\" not found in contexts")
    }
    let ctxField = "contexts[name=\(contextName)].context"
    guard let ctx = ctxEntry.context else {
      throw KubeConfigError(file: path, field: ctxField, message: "missing")
    }
    guard let clusterName = ctx.cluster, !clusterName.isEmpty else {
      throw KubeConfigError(file: path, field: "\(ctxField).cluster", message: "missing")
    }
    guard let clusterEntry = file.clusters?.first(where: { $0.name == clusterName }) else {
      throw KubeConfigError(
        file: path, field: "\(ctxField).cluster",
        message: "cluster \"\(clusterName)\" not found in clusters")
    }
    let clusterField = "clusters[name=\(clusterName)].cluster"
    guard let cluster = clusterEntry.cluster else {
      throw KubeConfigError(file: path, field: clusterField, message: "missing")
    }
    guard let server = cluster.server, !server.isEmpty else {
      throw KubeConfigError(file: path, field: "\(clusterField).server", message: "missing")
    }
    guard let url = URL(string: server), let scheme = url.scheme?.lowercased(),
      scheme == "https" || scheme == "http", url.host != nil
    else {
      throw KubeConfigError(
        file: path, field: "\(clusterField).server",
        message: "not an http(s) URL with a host: \(server)")
    }

    func bytes(dataField: String, data: String?, fileField: String, filePath: String?) throws
      -> [UInt8]?
    {
      if let data, !data.isEmpty {
        guard
          let decoded = Data(base64Encoded: data.filter { !$0.isWhitespace })
        else {
          throw KubeConfigError(file: path, field: dataField, message: "not valid base64")
        }
        return [UInt8](decoded)
      }
      if let filePath, !filePath.isEmpty {
        return try readFile(resolvePath(filePath), file: path, field: fileField)
      }
      return nil
    }

    let insecure = cluster.insecureSkipTLSVerify ?? false
    let ca = try bytes(
      dataField: "\(clusterField).certificate-authority-data",
      data: cluster.certificateAuthorityData,
      fileField: "\(clusterField).certificate-authority", filePath: cluster.certificateAuthority)
    if insecure && ca != nil {
      throw KubeConfigError(
        file: path, field: "\(clusterField).insecure-skip-tls-verify",
        message: "cannot be combined with a certificate authority")
    }

    var config = KubeConfig(
      server: server, certificateAuthorityPEM: ca, insecureSkipTLSVerify: insecure,
      source: "kubeconfig \(path), context \"\(contextName)\"")

    guard let userName = ctx.user, !userName.isEmpty else {
      return config  // anonymous access
    }
    guard let userEntry = file.users?.first(where: { $0.name == userName }) else {
      throw KubeConfigError(
        file: path, field: "\(ctxField).user", message: "user \"\(userName)\" not found in users")
    }
    let userField = "users[name=\(userName)].user"
    let user = userEntry.user ?? KubeConfigFile.User()
    config.clientCertificatePEM = try bytes(
      dataField: "\(userField).client-certificate-data", data: user.clientCertificateData,
      fileField: "\(userField).client-certificate", filePath: user.clientCertificate)
    config.clientKeyPEM = try bytes(
      dataField: "\(userField).client-key-data", data: user.clientKeyData,
      fileField: "\(userField).client-key", filePath: user.clientKey)
    if config.clientCertificatePEM != nil && config.clientKeyPEM == nil {
      throw KubeConfigError(
        file: path, field: "\(userField).client-key",
        message: "missing (client-certificate is set; give client-key or client-key-data)")
    }
    if config.clientKeyPEM != nil && config.clientCertificatePEM == nil {
      throw KubeConfigError(
        file: path, field: "\(userField).client-certificate",
        message: "missing (client-key is set; give client-certificate or client-certificate-data)")
    }
    if let tokenFile = user.tokenFile, !tokenFile.isEmpty {
      let resolved = resolvePath(tokenFile)
      _ = try readFile(resolved, file: path, field: "\(userField).tokenFile")
      config.tokenFile = resolved
    }
    if let token = user.token, !token.isEmpty { config.token = token }
    if let username = user.username, !username.isEmpty {
      config.username = username
      config.password = user.password ?? ""
    }
    let hasCredentials =
      config.clientCertificatePEM != nil || config.token != nil || config.tokenFile != nil
      || config.username != nil
    if !hasCredentials {
      if user.exec != nil {
        throw KubeConfigError(
          file: path, field: "\(userField).exec",
          message:
            "exec credential plugins are not supported; use a token, tokenFile or client certificate"
        )
      }
      if user.authProvider != nil {
        throw KubeConfigError(
          file: path, field: "\(userField).auth-provider",
          message: "auth providers are not supported; use a token, tokenFile or client certificate")
      }
    }
    return config
  }

  private static func readFile(_ p: String, file: String, field: String) throws -> [UInt8] {
    guard let data = FileManager.default.contents(atPath: p) else {
      let exists = FileManager.default.fileExists(atPath: p)
      throw KubeConfigError(
        file: file, field: field, message: exists ? "cannot read \(p)" : "file \(p) does not exist")
    }
    return [UInt8](data)
  }
}

/// A kubeconfig or in-cluster configuration problem, naming the file and the field.
public struct KubeConfigError: Error, Sendable, Equatable, CustomStringConvertible {
  /// The kubeconfig path (or `in-cluster configuration`).
  public var file: String
  /// The field, e.g. `users[name=admin].user.client-key` (empty for whole-file problems).
  public var field: String
  public var message: String

  public init(file: String, field: String, message: String) {
    self.file = file
    self.field = field
    self.message = message
  }

  public var description: String {
    field.isEmpty ? "\(file): \(message)" : "\(file): \(field): \(message)"
  }
}

/// The parts of the kubeconfig format nftproxy reads.
struct KubeConfigFile: Decodable {
  var currentContext: String?
  var clusters: [Named<Cluster>]?
  var contexts: [NamedContext]?
  var users: [NamedUser]?

  enum CodingKeys: String, CodingKey {
    case currentContext = "current-context"
    case clusters, contexts, users
  }

  struct Named<T: Decodable>: Decodable {
    var name: String
    var cluster: T?
  }

  struct NamedContext: Decodable {
    var name: String
    var context: Context?
  }

  struct NamedUser: Decodable {
    var name: String
    var user: User?
  }

  struct Cluster: Decodable {
    var server: String?
    var certificateAuthority: String?
    var certificateAuthorityData: String?
    var insecureSkipTLSVerify: Bool?

    enum CodingKeys: String, CodingKey {
      case server
      case certificateAuthority = "certificate-authority"
      case certificateAuthorityData = "certificate-authority-data"
      case insecureSkipTLSVerify = "insecure-skip-tls-verify"
    }
  }

  struct Context: Decodable {
    var cluster: String?
    var user: String?
    var namespace: String?
  }

  struct User: Decodable {
    var clientCertificate: String?
    var clientCertificateData: String?
    var clientKey: String?
    var clientKeyData: String?
    var token: String?
    var tokenFile: String?
    var username: String?
    var password: String?
    var exec: Present?
    var authProvider: Present?

    enum CodingKeys: String, CodingKey {
      case clientCertificate = "client-certificate"
      case clientCertificateData = "client-certificate-data"
      case clientKey = "client-key"
      case clientKeyData = "client-key-data"
      case token, tokenFile, username, password, exec
      case authProvider = "auth-provider"
    }
  }

  /// Any value; only its presence matters.
  struct Present: Decodable {
    init(from decoder: any Decoder) throws {}
  }
}
