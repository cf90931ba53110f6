// CurlHTTP: the async HTTP client every integration call goes through (DESIGN.md Part B).
// Public types only; libcurl stays behind `internal import CCurl` in CurlClient.swift.

/// One header field. Names compare case-insensitively.
public struct HTTPHeader: Sendable, Equatable {
  public var name: String
  public var value: String
  public init(_ name: String, _ value: String) {
    self.name = name
    self.value = value
  }
}

public struct HTTPHeaders: Sendable, Equatable, Sequence, ExpressibleByDictionaryLiteral {
  public private(set) var fields: [HTTPHeader] = []
  public init() {}
  public init(_ fields: [HTTPHeader]) { self.fields = fields }
  public init(dictionaryLiteral elements: (String, String)...) { fields = elements.map { HTTPHeader($0.0, $0.1) } }
  public mutating func add(_ name: String, _ value: String) { fields.append(HTTPHeader(name, value)) }
  public mutating func set(_ name: String, _ value: String) {
    remove(name)
    add(name, value)
  }
  public mutating func remove(_ name: String) { fields.removeAll { $0.name.caseInsensitiveEquals(name) } }
  /// The first value of the field, case-insensitively.
  public subscript(_ name: String) -> String? { fields.first { $0.name.caseInsensitiveEquals(name) }?.value }
  public func values(_ name: String) -> [String] { fields.filter { $0.name.caseInsensitiveEquals(name) }.map(\.value) }
  public func makeIterator() -> IndexingIterator<[HTTPHeader]> { fields.makeIterator() }
  public var count: Int { fields.count }
}

extension String {
  func caseInsensitiveEquals(_ other: String) -> Bool {
    let a = utf8
    let b = other.utf8
    guard a.count == b.count else { return false }
    return zip(a, b).allSatisfy { x, y in (x | 0x20) == (y | 0x20) || x == y }
  }
}

public struct HTTPRequest: Sendable {
  public var method: String
  public var url: String
  public var headers: HTTPHeaders
  public var body: [UInt8]?
  /// Overrides the client's total timeout for this request.
  public var timeout: Duration?
  /// Redirects are not followed unless this is > 0 (the maximum number followed).
  public var maxRedirects: Int
  /// Overrides the client's response body size limit for this request.
  public var maxResponseBytes: Int?

  public init(
    method: String = "GET", url: String, headers: HTTPHeaders = [:], body: [UInt8]? = nil,
    timeout: Duration? = nil, maxRedirects: Int = 0, maxResponseBytes: Int? = nil
  ) {
    self.method = method
    self.url = url
    self.headers = headers
    self.body = body
    self.timeout = timeout
    self.maxRedirects = maxRedirects
    self.maxResponseBytes = maxResponseBytes
  }
}

public enum HTTPVersion: String, Sendable {
  case http11 = "HTTP/1.1"
  case http2 = "HTTP/2"
}

public struct HTTPResponse: Sendable {
  public var status: Int
  public var headers: HTTPHeaders
  public var body: [UInt8]
  public var version: HTTPVersion?
  public init(status: Int, headers: HTTPHeaders = [:], body: [UInt8] = [], version: HTTPVersion? = nil) {
    self.status = status
    self.headers = headers
    self.body = body
    self.version = version
  }
  public var bodyText: String { String(decoding: body, as: UTF8.self) }
}

/// A transfer that did not produce an HTTP response. The message never contains a URL query,
/// header value or body (secrets live there).
public struct CurlHTTPError: Error, Sendable, CustomStringConvertible {
  public enum Kind: String, Sendable {
    case resolveFailed, connectFailed, timeout, connectionLost, tls, pinMismatch, bodyTooLarge, tooManyRedirects, invalidRequest, other
  }
  public var kind: Kind
  /// The CURLcode, for logs and metrics.
  public var curlCode: Int
  public var message: String
  /// scheme://host[:port]/path of the request (no query).
  public var url: String
  public init(kind: Kind, curlCode: Int, message: String, url: String) {
    self.kind = kind
    self.curlCode = curlCode
    self.message = message
    self.url = url
  }
  public var description: String { "\(kind.rawValue) (curl \(curlCode)) for \(url): \(message)" }
}

public enum TLSMinimumVersion: String, Sendable {
  case tls12 = "1.2"
  case tls13 = "1.3"
}

/// TLS settings, usually from SecurityPolicy.spec.transport.
public struct TLSPolicy: Sendable {
  public var minimumVersion: TLSMinimumVersion?
  /// TLS 1.3 cipher suites in OpenSSL's names (TLS_AES_256_GCM_SHA384, …).
  public var tls13CipherSuites: [String]?
  /// Host → "sha256//BASE64" pins of the server's public key (SPKI). A host listed here must
  /// present one of its keys.
  public var pinnedKeys: [String: [String]]
  /// A PEM file of trusted CAs; the system store when nil.
  public var caBundlePath: String?
  public init(
    minimumVersion: TLSMinimumVersion? = nil, tls13CipherSuites: [String]? = nil,
    pinnedKeys: [String: [String]] = [:], caBundlePath: String? = nil
  ) {
    self.minimumVersion = minimumVersion
    self.tls13CipherSuites = tls13CipherSuites
    self.pinnedKeys = pinnedKeys
    self.caBundlePath = caBundlePath
  }
}

/// What the hooks see. Every field is already redacted (see `Redaction`).
public struct HTTPRequestRecord: Sendable {
  public var id: UInt64
  public var method: String
  public var url: String
  public var headers: HTTPHeaders
  public var body: String?
}

public struct HTTPResponseRecord: Sendable {
  public var id: UInt64
  public var method: String
  public var url: String
  public var status: Int?
  public var headers: HTTPHeaders
  public var error: String?
  public var duration: Duration
  public var bytes: Int
}

/// Request and response hooks for metrics and audit logs. They run on the client's transfer thread:
/// keep them short and non-blocking.
public struct HTTPHooks: Sendable {
  public var onRequest: (@Sendable (HTTPRequestRecord) -> Void)?
  public var onResponse: (@Sendable (HTTPResponseRecord) -> Void)?
  public init(onRequest: (@Sendable (HTTPRequestRecord) -> Void)? = nil, onResponse: (@Sendable (HTTPResponseRecord) -> Void)? = nil) {
    self.onRequest = onRequest
    self.onResponse = onResponse
  }
}

public struct CurlHTTPConfiguration: Sendable {
  public enum VersionPreference: Sendable {
    /// HTTP/1.1 only.
    case http11
    /// HTTP/2 over TLS when the server offers it (ALPN), else HTTP/1.1. libcurl's default.
    case http2OverTLS
    /// HTTP/2 without upgrade, also over cleartext (h2c prior knowledge).
    case http2PriorKnowledge
  }
  public var connectTimeout: Duration = .seconds(10)
  public var totalTimeout: Duration = .seconds(120)
  /// A transfer slower than `lowSpeedLimit` bytes/s for `lowSpeedTime` is aborted (timeout).
  public var lowSpeedLimit: Int = 1
  public var lowSpeedTime: Duration = .seconds(30)
  public var maxResponseBytes: Int = 64 << 20
  public var version: VersionPreference = .http2OverTLS
  public var tls: TLSPolicy = TLSPolicy()
  /// Connections kept open per host (0 = libcurl's default).
  public var maxConnectionsPerHost: Int = 0
  /// Size of the connection cache.
  public var maxConnectionCache: Int = 64
  public var userAgent: String = "ytempire"
  /// Proxies come from http_proxy / https_proxy / no_proxy (libcurl reads them); set this to
  /// override, or "" to disable.
  public var proxy: String?
  public var hooks: HTTPHooks = HTTPHooks()
  public init() {}
}

/// The seam every integration call goes through: `CurlHTTPClient` is the real transport;
/// tests and in-process twins conform too, so drivers can be exercised without sockets.
public protocol HTTPTransport: Sendable {
  /// Performs the request. Any HTTP status is a response; only transport failures throw.
  func execute(_ request: HTTPRequest) async throws -> HTTPResponse
}
