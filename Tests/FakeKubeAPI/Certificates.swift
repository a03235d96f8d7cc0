import Foundation
import NIOSSL
import TestSupport

/// A CA, a server certificate for 127.0.0.1 signed by it, a client certificate signed by it, and
/// an unrelated CA — made with openssl once per test process in a temporary directory.
public struct TestCertificates: Sendable {
  public let directory: String
  public var caCert: String { directory + "/ca.crt" }
  public var serverCert: String { directory + "/server.crt" }
  public var serverKey: String { directory + "/server.key" }
  public var clientCert: String { directory + "/client.crt" }
  public var clientKey: String { directory + "/client.key" }
  public var otherCACert: String { directory + "/other-ca.crt" }

  public static func shared() throws -> TestCertificates {
    try cached.get()
  }

  private static let cached: Result<TestCertificates, any Error> = Result { try make() }

  private static func make() throws -> TestCertificates {
    let dir = NSTemporaryDirectory() + "kubewatch-certs-\(getpid())-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    func ca(_ name: String) throws {
      try runCommand([
        "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", "\(dir)/\(name).key", "-out", "\(dir)/\(name).crt", "-days", "3",
        "-subj", "/CN=\(name)", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
      ])
    }
    func leaf(_ name: String, cn: String, ext: String) throws {
      try ext.write(toFile: "\(dir)/\(name).ext", atomically: true, encoding: .utf8)
      try runCommand([
        "openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", "\(dir)/\(name).key", "-out", "\(dir)/\(name).csr", "-subj", "/CN=\(cn)",
      ])
      try runCommand([
        "openssl", "x509", "-req", "-in", "\(dir)/\(name).csr", "-CA", "\(dir)/ca.crt", "-CAkey",
        "\(dir)/ca.key", "-CAcreateserial", "-out", "\(dir)/\(name).crt", "-days", "3",
        "-extfile", "\(dir)/\(name).ext",
      ])
    }
    try ca("ca")
    try ca("other-ca")
    try leaf(
      "server", cn: "127.0.0.1",
      ext:
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
    )
    try leaf(
      "client", cn: "system:node:test",
      ext:
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
    )
    return TestCertificates(directory: dir)
  }

  public func bytes(_ path: String) throws -> [UInt8] {
    [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
  }

  /// Server TLS; with `requireClientCertificate` the server demands a certificate from the CA.
  public func serverTLS(requireClientCertificate: Bool = false) throws -> TLSConfiguration {
    var tls = TLSConfiguration.makeServerConfiguration(
      certificateChain: try NIOSSLCertificate.fromPEMFile(serverCert).map { .certificate($0) },
      privateKey: .privateKey(try NIOSSLPrivateKey(file: serverKey, format: .pem)))
    if requireClientCertificate {
      tls.certificateVerification = .noHostnameVerification
      tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caCert))
    }
    return tls
  }

  /// A kubeconfig for `server` that trusts this CA (inline `certificate-authority-data`) and
  /// authenticates with `token`.
  public func kubeconfig(server: String, token: String?) throws -> String {
    let ca = Data(try bytes(caCert)).base64EncodedString()
    let user = token.map { "\n    token: \($0)" } ?? " {}"
    return """
      apiVersion: v1
      kind: Config
      current-context: test
      clusters:
      - name: fake
        cluster:
          server: \(server)
          certificate-authority-data: \(ca)
      contexts:
      - name: test
        context:
          cluster: fake
          user: test-user
      users:
      - name: test-user
        user:\(user)

      """
  }
}

/// A fresh temporary directory, removed by `cleanup()`.
public struct TempDir: Sendable {
  public let path: String

  public init() throws {
    path = NSTemporaryDirectory() + "kubewatch-test-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  }

  /// Writes `contents` to `name` (creating directories) and returns the file's path.
  @discardableResult
  public func write(_ name: String, _ contents: String) throws -> String {
    let p = (path as NSString).appendingPathComponent(name)
    try FileManager.default.createDirectory(
      atPath: (p as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    try contents.write(toFile: p, atomically: true, encoding: .utf8)
    return p
  }

  public func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}
