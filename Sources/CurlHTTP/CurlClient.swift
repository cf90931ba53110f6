import Basics
internal import CCurl
import Foundation
import Synchronization

/// The async HTTP client on libcurl's multi interface.
///
/// One dedicated thread drives a `CURLM` handle (`curl_multi_perform` / `curl_multi_poll`), so no
/// libcurl call ever blocks Swift's cooperative pool. Callers hand transfers to that thread through
/// a mutex and `curl_multi_wakeup`; the thread resumes their continuations when transfers finish.
/// The multi handle owns the connection cache, so requests to the same host reuse connections
/// (HTTP/1.1 keep-alive, or HTTP/2 multiplexing). Cancelling the calling task removes the transfer
/// from the multi handle, which aborts it.
public final class CurlHTTPClient: HTTPTransport {
  public let configuration: CurlHTTPConfiguration
  private let driver: MultiDriver

  public init(configuration: CurlHTTPConfiguration = CurlHTTPConfiguration()) {
    CurlGlobal.ensureInitialised()
    self.configuration = configuration
    self.driver = MultiDriver(configuration: configuration)
  }

  deinit { driver.stop() }

  /// Stops the transfer thread; transfers still running fail with `CancellationError`.
  public func shutdown() { driver.stop() }

  /// Performs the request. Any HTTP status is a response; only transport failures throw
  /// (`CurlHTTPError`, or `CancellationError` when the task is cancelled).
  public func execute(_ request: HTTPRequest) async throws -> HTTPResponse {
    let id = driver.nextID()
    if let hook = configuration.hooks.onRequest {
      hook(
        HTTPRequestRecord(
          id: id, method: request.method, url: Redaction.url(request.url),
          headers: Redaction.headers(request.headers),
          body: Redaction.body(request.body, contentType: request.headers["Content-Type"])))
    }
    return try await withTaskCancellationHandler {
      try await withCheckedThrowingContinuation { (c: CheckedContinuation<HTTPResponse, any Error>) in
        driver.submit(Transfer(id: id, request: request, configuration: configuration, continuation: c))
      }
    } onCancel: {
      driver.cancel(id)
    }
  }

  /// Connections opened by this client so far (for tests and metrics).
  public var connectionsOpened: Int { driver.connectionsOpened.load(ordering: .relaxed) }
}

enum CurlGlobal {
  private static let once: Void = { _ = curl_global_init(Int(CURL_GLOBAL_ALL)) }()
  static func ensureInitialised() { _ = once }
}

/// One request in flight.
///
/// @unchecked Sendable: a Transfer is created by the calling task and then handed over (through
/// the driver's mutex) to the driver thread, which is the only one to touch it afterwards.
final class Transfer: @unchecked Sendable {
  let id: UInt64
  let request: HTTPRequest
  let configuration: CurlHTTPConfiguration
  let continuation: CheckedContinuation<HTTPResponse, any Error>
  let limit: Int
  var body: [UInt8] = []
  var headers: [HTTPHeader] = []
  var tooLarge = false
  var headerList: UnsafeMutablePointer<curl_slist>?
  let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
  let started = ContinuousClock.now

  init(id: UInt64, request: HTTPRequest, configuration: CurlHTTPConfiguration, continuation: CheckedContinuation<HTTPResponse, any Error>) {
    self.id = id
    self.request = request
    self.configuration = configuration
    self.continuation = continuation
    self.limit = request.maxResponseBytes ?? configuration.maxResponseBytes
    errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
  }
  deinit {
    if let headerList { curl_slist_free_all(headerList) }
    errorBuffer.deallocate()
  }
}

private let writeCallback: curl_write_callback = { ptr, size, nmemb, userdata in
  let t = Unmanaged<Transfer>.fromOpaque(userdata!).takeUnretainedValue()
  let n = size * nmemb
  if t.body.count + n > t.limit {
    t.tooLarge = true
    return 0
  }
  if let ptr { t.body.append(contentsOf: UnsafeRawBufferPointer(start: ptr, count: n)) }
  return n
}

private let headerCallback: curl_write_callback = { ptr, size, nmemb, userdata in
  let t = Unmanaged<Transfer>.fromOpaque(userdata!).takeUnretainedValue()
  let n = size * nmemb
  guard let ptr else { return n }
  // Byte-level parsing: this runs for every header line of every response.
  let line = UnsafeRawBufferPointer(start: ptr, count: n)
  if n >= 5, line[0] == UInt8(ascii: "H"), line[1] == UInt8(ascii: "T"), line[2] == UInt8(ascii: "T"), line[3] == UInt8(ascii: "P"),
    line[4] == UInt8(ascii: "/")
  {
    t.headers.removeAll(keepingCapacity: true)  // a new response (after 1xx or a redirect)
  } else if let colon = line.firstIndex(of: UInt8(ascii: ":")) {
    func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0D || b == 0x0A }
    var start = colon + 1
    var end = n
    while start < end, isSpace(line[start]) { start += 1 }
    while end > start, isSpace(line[end - 1]) { end -= 1 }
    t.headers.append(HTTPHeader(String(decoding: line[..<colon], as: UTF8.self), String(decoding: line[start..<end], as: UTF8.self)))
  }
  return n
}

/// Owns the multi handle and the thread that drives it.
///
/// @unchecked Sendable: `multi`, `live`, `idle` and `earlyCancels` are touched only by the driver
/// thread; what other threads touch (`shared`, the atomics) is synchronised, and
/// curl_multi_wakeup is documented as callable from any thread.
final class MultiDriver: @unchecked Sendable {
  private struct Shared {
    var pending: [Transfer] = []
    var cancels: [UInt64] = []
    var stopping = false
    var stopped = false
  }
  private let shared = Mutex(Shared())
  private let ids = Atomic<UInt64>(0)
  let connectionsOpened = Atomic<Int>(0)
  private let multi: UnsafeMutableRawPointer
  private var live: [UnsafeMutableRawPointer: Transfer] = [:]
  private var byID: [UInt64: UnsafeMutableRawPointer] = [:]
  private var idle: [UnsafeMutableRawPointer] = []
  private var earlyCancels: Set<UInt64> = []

  init(configuration: CurlHTTPConfiguration) {
    multi = curl_multi_init()!
    _ = ytc_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, configuration.maxConnectionCache)
    if configuration.maxConnectionsPerHost > 0 {
      _ = ytc_multi_setopt_long(multi, CURLMOPT_MAX_HOST_CONNECTIONS, configuration.maxConnectionsPerHost)
    }
    _ = ytc_multi_setopt_long(multi, CURLMOPT_PIPELINING, Int(CURLPIPE_MULTIPLEX))
    let thread = Thread { [self] in self.run() }
    thread.name = "ytempire-curl"
    thread.start()
  }

  func nextID() -> UInt64 { ids.add(1, ordering: .relaxed).newValue }

  func submit(_ t: Transfer) {
    let rejected = shared.withLock { s -> Bool in
      if s.stopped || s.stopping { return true }
      s.pending.append(t)
      return false
    }
    if rejected {
      t.continuation.resume(throwing: CancellationError())
      return
    }
    curl_multi_wakeup(multi)
  }

  func cancel(_ id: UInt64) {
    let ok = shared.withLock { s -> Bool in
      if s.stopped { return false }
      s.cancels.append(id)
      return true
    }
    if ok { curl_multi_wakeup(multi) }
  }

  func stop() {
    let wake = shared.withLock { s -> Bool in
      if s.stopping || s.stopped { return false }
      s.stopping = true
      return true
    }
    if wake { curl_multi_wakeup(multi) }
  }

  // MARK: driver thread

  private func run() {
    var running: Int32 = 0
    while true {
      let (pending, cancels, stopping) = shared.withLock { s in
        let r = (s.pending, s.cancels, s.stopping)
        s.pending = []
        s.cancels = []
        if s.stopping { s.stopped = true }
        return r
      }
      for t in pending {
        if earlyCancels.remove(t.id) != nil {
          t.continuation.resume(throwing: CancellationError())
          continue
        }
        start(t)
      }
      for id in cancels {
        if let h = byID[id] { finish(h, cancelled: true) } else { earlyCancels.insert(id) }
      }
      if stopping {
        for h in Array(live.keys) { finish(h, cancelled: true) }
        for h in idle { curl_easy_cleanup(h) }
        idle.removeAll()
        curl_multi_cleanup(multi)
        return
      }
      curl_multi_perform(multi, &running)
      var left: Int32 = 0
      while let msg = curl_multi_info_read(multi, &left) {
        if ytc_msg_is_done(msg) != 0, let h = msg.pointee.easy_handle {
          finish(h, result: ytc_msg_result(msg))
        }
      }
      curl_multi_poll(multi, nil, 0, 1000, nil)
    }
  }

  private func start(_ t: Transfer) {
    let h = idle.popLast() ?? curl_easy_init()!
    if let error = configure(h, t) {
      curl_easy_reset(h)
      idle.append(h)
      t.continuation.resume(throwing: error)
      return
    }
    live[h] = t
    byID[t.id] = h
    let rc = curl_multi_add_handle(multi, h)
    if rc != CURLM_OK {
      live[h] = nil
      byID[t.id] = nil
      curl_easy_reset(h)
      idle.append(h)
      t.continuation.resume(
        throwing: CurlHTTPError(
          kind: .other, curlCode: Int(rc.rawValue), message: String(cString: curl_multi_strerror(rc)),
          url: Redaction.urlWithoutQuery(t.request.url)))
    }
  }

  private func finish(_ h: UnsafeMutableRawPointer, result: CURLcode = CURLE_OK, cancelled: Bool = false) {
    guard let t = live.removeValue(forKey: h) else { return }
    byID[t.id] = nil
    curl_multi_remove_handle(multi, h)
    var status = 0
    var version = 0
    var connects = 0
    _ = ytc_getinfo_long(h, CURLINFO_RESPONSE_CODE, &status)
    _ = ytc_getinfo_long(h, CURLINFO_HTTP_VERSION, &version)
    _ = ytc_getinfo_long(h, CURLINFO_NUM_CONNECTS, &connects)
    connectionsOpened.add(connects, ordering: .relaxed)
    curl_easy_reset(h)
    if idle.count < 64 { idle.append(h) } else { curl_easy_cleanup(h) }

    let outcome: Result<HTTPResponse, any Error>
    if cancelled {
      outcome = .failure(CancellationError())
    } else if result == CURLE_OK {
      outcome = .success(
        HTTPResponse(
          status: status, headers: HTTPHeaders(t.headers), body: t.body,
          version: version == Int(CURL_HTTP_VERSION_2_0) ? .http2 : .http11))
    } else {
      outcome = .failure(Self.error(result, t))
    }
    if let hook = t.configuration.hooks.onResponse {
      var errorText: String?
      if case .failure(let e) = outcome { errorText = "\(e)" }
      hook(
        HTTPResponseRecord(
          id: t.id, method: t.request.method, url: Redaction.url(t.request.url),
          status: status == 0 ? nil : status, headers: Redaction.headers(HTTPHeaders(t.headers)),
          error: errorText, duration: ContinuousClock.now - t.started, bytes: t.body.count))
    }
    t.continuation.resume(with: outcome)
  }

  static func error(_ rc: CURLcode, _ t: Transfer) -> CurlHTTPError {
    let url = Redaction.urlWithoutQuery(t.request.url)
    var detail = String(cString: t.errorBuffer)
    if detail.isEmpty { detail = String(cString: curl_easy_strerror(rc)) }
    let kind: CurlHTTPError.Kind
    switch rc {
    case CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY: kind = .resolveFailed
    case CURLE_COULDNT_CONNECT: kind = .connectFailed
    case CURLE_OPERATION_TIMEDOUT: kind = .timeout
    case CURLE_RECV_ERROR, CURLE_SEND_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE, CURLE_HTTP2, CURLE_HTTP2_STREAM: kind = .connectionLost
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH: kind = .pinMismatch
    case CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CONNECT_ERROR, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_CIPHER, CURLE_SSL_CERTPROBLEM:
      kind = .tls
    case CURLE_FILESIZE_EXCEEDED: kind = .bodyTooLarge
    case CURLE_WRITE_ERROR where t.tooLarge: kind = .bodyTooLarge
    case CURLE_TOO_MANY_REDIRECTS: kind = .tooManyRedirects
    case CURLE_URL_MALFORMAT, CURLE_UNSUPPORTED_PROTOCOL: kind = .invalidRequest
    default: kind = .other
    }
    if kind == .bodyTooLarge { detail = "response body larger than \(t.limit) bytes" }
    return CurlHTTPError(kind: kind, curlCode: Int(rc.rawValue), message: Redaction.url(detail), url: url)
  }

  /// Sets every option of a transfer. Returns an error for a request libcurl refuses.
  private func configure(_ h: UnsafeMutableRawPointer, _ t: Transfer) -> CurlHTTPError? {
    let c = t.configuration
    let r = t.request
    var failed: CURLcode = CURLE_OK
    func check(_ rc: CURLcode) { if rc != CURLE_OK && failed == CURLE_OK { failed = rc } }
    let me = Unmanaged.passUnretained(t).toOpaque()
    check(ytc_setopt_string(h, CURLOPT_URL, r.url))
    check(ytc_setopt_string(h, CURLOPT_PROTOCOLS_STR, "http,https"))
    check(ytc_setopt_long(h, CURLOPT_NOSIGNAL, 1))
    check(ytc_setopt_pointer(h, CURLOPT_ERRORBUFFER, t.errorBuffer))
    check(ytc_setopt_write_function(h, CURLOPT_WRITEFUNCTION, writeCallback))
    check(ytc_setopt_pointer(h, CURLOPT_WRITEDATA, me))
    check(ytc_setopt_write_function(h, CURLOPT_HEADERFUNCTION, headerCallback))
    check(ytc_setopt_pointer(h, CURLOPT_HEADERDATA, me))
    check(ytc_setopt_long(h, CURLOPT_CONNECTTIMEOUT_MS, Self.ms(c.connectTimeout)))
    check(ytc_setopt_long(h, CURLOPT_TIMEOUT_MS, Self.ms(r.timeout ?? c.totalTimeout)))
    if c.lowSpeedLimit > 0 {
      check(ytc_setopt_long(h, CURLOPT_LOW_SPEED_LIMIT, c.lowSpeedLimit))
      check(ytc_setopt_long(h, CURLOPT_LOW_SPEED_TIME, max(1, Self.ms(c.lowSpeedTime) / 1000)))
    }
    check(ytc_setopt_off_t(h, CURLOPT_MAXFILESIZE_LARGE, curl_off_t(t.limit)))
    check(ytc_setopt_long(h, CURLOPT_TCP_KEEPALIVE, 1))
    check(ytc_setopt_string(h, CURLOPT_USERAGENT, c.userAgent))
    if r.maxRedirects > 0 {
      check(ytc_setopt_long(h, CURLOPT_FOLLOWLOCATION, 1))
      check(ytc_setopt_long(h, CURLOPT_MAXREDIRS, r.maxRedirects))
      check(ytc_setopt_string(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"))
    } else {
      check(ytc_setopt_long(h, CURLOPT_FOLLOWLOCATION, 0))
    }
    switch c.version {
    case .http11: check(ytc_setopt_long(h, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_1_1)))
    case .http2OverTLS: check(ytc_setopt_long(h, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_2TLS)))
    case .http2PriorKnowledge: check(ytc_setopt_long(h, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE)))
    }
    // Wait for a connection being set up to a host rather than open a second one, so that
    // concurrent HTTP/2 requests share one multiplexed connection.
    if c.version != .http11 { check(ytc_setopt_long(h, CURLOPT_PIPEWAIT, 1)) }
    if let proxy = c.proxy { check(ytc_setopt_string(h, CURLOPT_PROXY, proxy)) }

    // TLS policy.
    switch c.tls.minimumVersion {
    case .tls13?: check(ytc_setopt_long(h, CURLOPT_SSLVERSION, Int(CURL_SSLVERSION_TLSv1_3)))
    case .tls12?, nil: check(ytc_setopt_long(h, CURLOPT_SSLVERSION, Int(CURL_SSLVERSION_TLSv1_2)))
    }
    if let suites = c.tls.tls13CipherSuites, !suites.isEmpty {
      check(ytc_setopt_string(h, CURLOPT_TLS13_CIPHERS, suites.joined(separator: ":")))
    }
    if let ca = c.tls.caBundlePath { check(ytc_setopt_string(h, CURLOPT_CAINFO, ca)) }
    if !c.tls.pinnedKeys.isEmpty, let host = Self.host(of: r.url), let pins = c.tls.pinnedKeys[host] ?? c.tls.pinnedKeys[host.lowercased()],
      !pins.isEmpty
    {
      check(ytc_setopt_string(h, CURLOPT_PINNEDPUBLICKEY, pins.joined(separator: ";")))
    }

    // Method, headers, body.
    let method = r.method.uppercased()
    switch method {
    case "GET" where r.body == nil: check(ytc_setopt_long(h, CURLOPT_HTTPGET, 1))
    case "HEAD": check(ytc_setopt_long(h, CURLOPT_NOBODY, 1))
    default: check(ytc_setopt_string(h, CURLOPT_CUSTOMREQUEST, method))
    }
    if let body = r.body {
      check(ytc_setopt_off_t(h, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count)))
      body.withUnsafeBufferPointer { b in
        check(
          ytc_setopt_pointer(h, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: b.baseAddress ?? UnsafePointer(bitPattern: 1)!)))
      }
    }
    var list: UnsafeMutablePointer<curl_slist>?
    for f in r.headers { list = curl_slist_append(list, "\(f.name): \(f.value)") }
    if r.body != nil && r.headers["Expect"] == nil { list = curl_slist_append(list, "Expect:") }
    t.headerList = list
    if let list { check(ytc_setopt_slist(h, CURLOPT_HTTPHEADER, list)) }

    guard failed == CURLE_OK else {
      return CurlHTTPError(
        kind: .invalidRequest, curlCode: Int(failed.rawValue), message: String(cString: curl_easy_strerror(failed)),
        url: Redaction.urlWithoutQuery(r.url))
    }
    return nil
  }

  static func ms(_ d: Duration) -> Int {
    let (s, a) = d.components
    return Int(s) * 1000 + Int(a / 1_000_000_000_000_000)
  }

  /// The host of a URL, parsed by libcurl's own URL parser.
  static func host(of url: String) -> String? {
    guard let u = curl_url() else { return nil }
    defer { curl_url_cleanup(u) }
    guard curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK else { return nil }
    var p: UnsafeMutablePointer<CChar>?
    guard curl_url_get(u, CURLUPART_HOST, &p, 0) == CURLUE_OK, let p else { return nil }
    defer { curl_free(p) }
    return String(cString: p)
  }
}
