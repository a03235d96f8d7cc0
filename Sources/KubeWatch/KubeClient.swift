import AsyncHTTPClient
import Foundation
import KubeModel
import Logging
import NIOCore
import NIOHTTP1
import NIOSSL

/// A failed API request: what went wrong, with the URL and the server's `Status` message.
public struct KubeAPIError: Error, Sendable, CustomStringConvertible {
  /// The class of failure.
  public enum Kind: Sendable, Equatable {
    /// 401: the credentials were rejected (also after re-reading a token file).
    case unauthorized
    /// 403: the credentials lack permission (RBAC).
    case forbidden
    /// 410: the resourceVersion (or continue token) is too old; relist.
    case gone
    /// Any other unexpected HTTP status.
    case httpStatus(Int)
    /// The response body did not decode.
    case invalidResponse
    /// Connection, TLS or timeout failure, or a stream cut mid-body.
    case transport
  }

  public var kind: Kind
  /// The request URL.
  public var url: String
  /// Detail: the server's `Status` message or the underlying error.
  public var message: String
  /// The server's `Status`, when it sent one.
  public var status: Status?

  public init(kind: Kind, url: String, message: String, status: Status? = nil) {
    self.kind = kind
    self.url = url
    self.message = message
    self.status = status
  }

  public var description: String {
    switch kind {
    case .unauthorized:
      "GET \(url): 401 Unauthorized: the API server rejected the credentials (\(message))"
    case .forbidden: "GET \(url): 403 Forbidden: \(message)"
    case .gone: "GET \(url): 410 Gone: \(message)"
    case .httpStatus(let code): "GET \(url): HTTP \(code): \(message)"
    case .invalidResponse: "GET \(url): invalid response: \(message)"
    case .transport: "GET \(url): \(message)"
    }
  }
}

/// An HTTPS client for the Kubernetes API (async-http-client): paginated lists and streaming
/// watches with bearer-token, basic or client-certificate authentication.
///
/// Call ``shutdown()`` when done.
public final class KubeClient: Sendable {
  /// The configuration the client was made from.
  public let config: KubeConfig
  private let http: HTTPClient
  private let credentials: CredentialSource
  private let logger: Logger
  private let requestTimeout: TimeAmount

  /// Creates a client. TLS verifies the server against `certificateAuthorityPEM` (or the system
  /// roots) unless `insecureSkipTLSVerify` is set.
  ///
  /// - Parameters:
  ///   - requestTimeout: time allowed until the response head of any request arrives.
  ///   - readTimeout: longest silence on a connection before it is considered dead; keep it
  ///     above the watch timeout.
  ///   - tokenRefreshInterval: how often a token file is re-read.
  public init(
    config: KubeConfig, logger: Logger = Logger(label: "nftproxy.kubewatch"),
    requestTimeout: Duration = .seconds(60), readTimeout: Duration = .seconds(15 * 60),
    tokenRefreshInterval: Duration = .seconds(60)
  ) throws {
    self.config = config
    self.logger = logger
    self.requestTimeout = TimeAmount(requestTimeout)
    self.credentials = CredentialSource(config: config, refreshInterval: tokenRefreshInterval)

    var tls = TLSConfiguration.makeClientConfiguration()
    if config.insecureSkipTLSVerify {
      tls.certificateVerification = .none
    } else if let ca = config.certificateAuthorityPEM {
      do {
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(ca))
      } catch {
        throw KubeConfigError(
          file: config.source, field: "certificate authority",
          message: "not a PEM certificate: \(error)")
      }
    }
    if let cert = config.clientCertificatePEM, let key = config.clientKeyPEM {
      do {
        tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(cert).map { .certificate($0) }
      } catch {
        throw KubeConfigError(
          file: config.source, field: "client certificate",
          message: "not a PEM certificate: \(error)")
      }
      do {
        tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: key, format: .pem))
      } catch {
        throw KubeConfigError(
          file: config.source, field: "client key", message: "not a PEM private key: \(error)")
      }
    }
    guard URL(string: config.server)?.host != nil else {
      throw KubeConfigError(
        file: config.source, field: "server", message: "not a URL: \(config.server)")
    }
    var httpConfig = HTTPClient.Configuration(
      tlsConfiguration: tls, redirectConfiguration: .disallow,
      timeout: .init(connect: .seconds(10), read: TimeAmount(readTimeout)),
      decompression: .disabled)
    httpConfig.connectionPool.idleTimeout = .seconds(90)
    http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: httpConfig)
  }

  /// Closes all connections. Required before the client is released.
  public func shutdown() async throws {
    try await http.shutdown()
  }

  // MARK: - list

  /// Lists a whole collection, page by page (`limit`/`continue`), and returns all items and the
  /// list's resourceVersion. Items that fail to decode are returned in `undecodable`.
  ///
  /// If a continue token expires (410) mid-way, the list restarts once without pagination.
  public func list<Object>(_ resource: Resource<Object>, pageSize: Int = 500) async throws
    -> ListResult<Object>
  {
    do {
      return try await listPages(resource, pageSize: pageSize)
    } catch let e as KubeAPIError where e.kind == .gone {
      logger.info(
        "list continuation expired; listing again without pagination",
        metadata: ["resource": "\(resource.name)"])
      return try await listPages(resource, pageSize: 0)
    }
  }

  private func listPages<Object>(_ resource: Resource<Object>, pageSize: Int) async throws
    -> ListResult<Object>
  {
    var items: [Object] = []
    var undecodable: [UndecodableObject] = []
    var resourceVersion = ""
    var continueToken: String?
    var pages = 0
    repeat {
      var query: [(String, String)] = []
      if pageSize > 0 { query.append(("limit", String(pageSize))) }
      if let continueToken { query.append(("continue", continueToken)) }
      appendSelectors(resource, to: &query)
      let url = makeURL(resource.path, query)
      let response = try await send(url: url, deadline: .now() + requestTimeout)
      let body = try await collect(response, url: url, limit: 1 << 30)
      let list: ObjectList<Object>
      do {
        list = try JSONDecoder().decode(ObjectList<Object>.self, from: Data(body))
      } catch {
        throw KubeAPIError(
          kind: .invalidResponse, url: url, message: "list: \(describeDecodingError(error))")
      }
      pages += 1
      for item in list.items ?? [] {
        switch item.result {
        case .success(let o): items.append(o)
        case .failure(let box): undecodable.append(box.value)
        }
      }
      if let rv = list.metadata?.resourceVersion, !rv.isEmpty { resourceVersion = rv }
      continueToken = list.metadata?.continue.flatMap { $0.isEmpty ? nil : $0 }
    } while continueToken != nil
    guard !resourceVersion.isEmpty else {
      throw KubeAPIError(
        kind: .invalidResponse, url: makeURL(resource.path, []),
        message: "list has no metadata.resourceVersion")
    }
    return ListResult(
      items: items, undecodable: undecodable, resourceVersion: resourceVersion, pages: pages)
  }

  // MARK: - watch

  /// Starts a watch from `resourceVersion` with bookmarks; the server ends it after
  /// `timeoutSeconds`. Throws a ``KubeAPIError`` of kind `.gone` if the server answers 410.
  public func watch<Object>(
    _ resource: Resource<Object>, resourceVersion: String, timeoutSeconds: Int
  ) async throws -> WatchStream<Object> {
    var query: [(String, String)] = [
      ("watch", "1"), ("resourceVersion", resourceVersion), ("allowWatchBookmarks", "true"),
      ("timeoutSeconds", String(timeoutSeconds)),
    ]
    appendSelectors(resource, to: &query)
    let url = makeURL(resource.path, query)
    let response = try await send(url: url, deadline: .now() + requestTimeout)
    return WatchStream(body: response.body, url: url)
  }

  // MARK: - plumbing

  private func appendSelectors<Object>(_ r: Resource<Object>, to query: inout [(String, String)]) {
    if let s = r.labelSelector, !s.isEmpty { query.append(("labelSelector", s)) }
    if let s = r.fieldSelector, !s.isEmpty { query.append(("fieldSelector", s)) }
  }

  private func makeURL(_ path: String, _ query: [(String, String)]) -> String {
    var url = config.server + path
    if !query.isEmpty {
      url +=
        "?" + query.map { "\(percentEncode($0.0))=\(percentEncode($0.1))" }.joined(separator: "&")
    }
    return url
  }

  /// Sends a GET and returns a 200 response (body not yet read); maps other statuses to
  /// ``KubeAPIError``. On 401 a token file is re-read and the request retried once.
  private func send(url: String, deadline: NIODeadline) async throws -> HTTPClientResponse {
    var retried = false
    while true {
      var request = HTTPClientRequest(url: url)
      request.method = .GET
      request.headers.add(name: "Accept", value: "application/json")
      request.headers.add(name: "User-Agent", value: "nftproxy")
      if let auth = try await credentials.authorization() {
        request.headers.add(name: "Authorization", value: auth)
      }
      let response: HTTPClientResponse
      do {
        response = try await http.execute(request, deadline: deadline, logger: logger)
      } catch {
        throw mapTransportError(error, url: url)
      }
      if response.status == .ok { return response }
      let body = (try? await collect(response, url: url, limit: 1 << 20)) ?? []
      let status = try? JSONDecoder().decode(Status.self, from: Data(body))
      let message =
        status?.message
        ?? (body.isEmpty
          ? response.status.reasonPhrase : String(decoding: body.prefix(500), as: UTF8.self))
      switch response.status.code {
      case 401:
        if !retried, await credentials.invalidate() {
          retried = true
          logger.info(
            "401 from the API server; re-reading the token file", metadata: ["url": "\(url)"])
          continue
        }
        throw KubeAPIError(kind: .unauthorized, url: url, message: message, status: status)
      case 403: throw KubeAPIError(kind: .forbidden, url: url, message: message, status: status)
      case 410: throw KubeAPIError(kind: .gone, url: url, message: message, status: status)
      default:
        throw KubeAPIError(
          kind: .httpStatus(Int(response.status.code)), url: url, message: message, status: status)
      }
    }
  }

  private func collect(_ response: HTTPClientResponse, url: String, limit: Int) async throws
    -> [UInt8]
  {
    do {
      let buffer = try await response.body.collect(upTo: limit)
      return Array(buffer.readableBytesView)
    } catch {
      throw mapTransportError(error, url: url)
    }
  }
}

/// Maps a client error to ``KubeAPIError`` (transport), or to `CancellationError` if the task
/// was cancelled.
func mapTransportError(_ error: any Error, url: String) -> any Error {
  if error is CancellationError || error is KubeAPIError { return error }
  if Task.isCancelled { return CancellationError() }
  var message = String(describing: error)
  if let e = error as? NIOSSLError {
    message = "TLS failure (check the certificate authority and server name): \(e)"
  } else if let e = error as? HTTPClientError, e == .remoteConnectionClosed {
    message = "connection closed by the server"
  } else if let e = error as? HTTPClientError, e == .readTimeout {
    message = "read timeout"
  }
  return KubeAPIError(kind: .transport, url: url, message: message)
}

private let unreserved = Set(
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8)

/// Percent-encodes everything but RFC 3986 unreserved characters.
func percentEncode(_ s: String) -> String {
  var out = ""
  for b in s.utf8 {
    if unreserved.contains(b) {
      out.unicodeScalars.append(Unicode.Scalar(b))
    } else {
      out += "%" + (b < 16 ? "0" : "") + String(b, radix: 16, uppercase: true)
    }
  }
  return out
}

/// The events of one watch request, decoded incrementally from the response body.
///
/// Ends (returns nil) when the server ends the watch; throws ``KubeAPIError`` (`.transport`) if
/// the connection is cut mid-stream.
public struct WatchStream<Object: KubeObject>: AsyncSequence, Sendable {
  public typealias Element = WatchStreamEvent<Object>
  let body: HTTPClientResponse.Body
  /// The watch request URL.
  public let url: String

  public func makeAsyncIterator() -> Iterator {
    Iterator(body: body.makeAsyncIterator(), url: url)
  }

  /// Iterator of ``WatchStream``.
  public struct Iterator: AsyncIteratorProtocol {
    var body: HTTPClientResponse.Body.AsyncIterator
    let url: String
    var framer = JSONFramer()
    var pending: [WatchStreamEvent<Object>] = []
    var pendingIndex = 0
    let decoder = JSONDecoder()

    public mutating func next() async throws -> WatchStreamEvent<Object>? {
      while true {
        if pendingIndex < pending.count {
          let e = pending[pendingIndex]
          pendingIndex += 1
          return e
        }
        pending.removeAll(keepingCapacity: true)
        pendingIndex = 0
        let chunk: ByteBuffer?
        do {
          chunk = try await body.next()
        } catch {
          throw mapTransportError(error, url: url)
        }
        try Task.checkCancellation()
        guard let chunk else {
          do {
            try framer.finish()
          } catch {
            throw KubeAPIError(kind: .transport, url: url, message: "watch stream cut: \(error)")
          }
          return nil
        }
        let documents: [[UInt8]]
        do {
          documents = try framer.push(chunk.readableBytesView)
        } catch {
          throw KubeAPIError(kind: .invalidResponse, url: url, message: "watch stream: \(error)")
        }
        for doc in documents {
          do {
            pending.append(try decoder.decode(RawWatchEvent<Object>.self, from: Data(doc)).event)
          } catch {
            throw KubeAPIError(
              kind: .invalidResponse, url: url,
              message: "watch event: \(describeDecodingError(error))")
          }
        }
      }
    }
  }
}
