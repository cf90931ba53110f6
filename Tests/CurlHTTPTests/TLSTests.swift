import CurlHTTP
import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// A self-signed certificate made at test time, and `openssl s_server` serving it on 127.0.0.1.
final class TLSFixture {
  let dir: URL
  let cert: String
  let key: String
  /// sha256//BASE64 of the certificate's SubjectPublicKeyInfo.
  let pin: String

  init() throws {
    dir = FileManager.default.temporaryDirectory.appendingPathComponent("ytempire-tls-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    cert = dir.appendingPathComponent("cert.pem").path
    key = dir.appendingPathComponent("key.pem").path
    try Self.sh(
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 -subj /CN=127.0.0.1 "
        + "-addext subjectAltName=IP:127.0.0.1 -keyout '\(key)' -out '\(cert)' 2>/dev/null", in: dir)
    let b64 = try Self.sh(
      "openssl x509 -in '\(cert)' -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64", in: dir)
    pin = "sha256//" + b64.trimmingCharacters(in: .whitespacesAndNewlines)
  }

  deinit { try? FileManager.default.removeItem(at: dir) }

  /// Starts a program in the background (TestSupport's posix_spawn helper: no Foundation.Process).
  static func spawn(_ argv: [String]) throws -> Processes.Child { try Processes.start(argv) }

  /// The child's exit status, waiting at most 5 minutes.
  static func wait(_ child: Processes.Child) -> Int32 { child.wait(timeout: 300) ?? -1 }

  @discardableResult
  static func sh(_ command: String, in dir: URL) throws -> String {
    try Processes.run(["/bin/sh", "-c", command], cwd: dir.path).stdout
  }

  /// Waits (at most 60 s: the machine may be loaded) until something accepts connections on the port.
  static func waitForListener(_ port: Int) async throws {
    let deadline = ContinuousClock.now + .seconds(60)
    while ContinuousClock.now < deadline {
      let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
      var addr = sockaddr_in()
      addr.sin_family = sa_family_t(AF_INET)
      addr.sin_addr.s_addr = inet_addr("127.0.0.1")
      addr.sin_port = in_port_t(UInt16(port).bigEndian)
      let ok =
        withUnsafePointer(to: &addr) {
          $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
      close(fd)
      if ok { return }
      try await Task.sleep(for: .milliseconds(20))
    }
  }

  /// Runs `openssl s_server -www` with `options` for the duration of `body`. It binds port 0
  /// itself and prints the port it got (`ACCEPT 127.0.0.1:PORT`).
  func withServer<T>(_ options: [String], _ body: (String) async throws -> T) async throws -> T {
    let out = dir.appendingPathComponent("s_server-\(UUID().uuidString).out").path
    let pid = try Processes.start(
      ["/usr/bin/openssl", "s_server", "-accept", "127.0.0.1:0", "-cert", cert, "-key", key, "-www"] + options,
      stdout: .file(out), stderr: .file(out))
    defer { pid.stop(grace: 1) }
    var port = 0
    let deadline = ContinuousClock.now + .seconds(60)
    while port == 0 && ContinuousClock.now < deadline && pid.isRunning {
      if let text = try? String(contentsOfFile: out, encoding: .utf8), let r = text.range(of: "ACCEPT 127.0.0.1:") {
        port = Int(text[r.upperBound...].prefix { $0.isNumber }) ?? 0
      }
      if port == 0 { try await Task.sleep(for: .milliseconds(20)) }
    }
    try #require(port > 0, "openssl s_server did not start: \((try? String(contentsOfFile: out, encoding: .utf8)) ?? "")")
    try await Self.waitForListener(port)
    return try await body("https://127.0.0.1:\(port)/")
  }
}

@Suite(.serialized) struct TLSTests {
  let fixture: TLSFixture
  init() throws { fixture = try TLSFixture() }

  func client(_ tls: TLSPolicy) -> CurlHTTPClient {
    var c = CurlHTTPConfiguration()
    c.tls = tls
    c.connectTimeout = .seconds(5)
    c.totalTimeout = .seconds(10)
    return CurlHTTPClient(configuration: c)
  }

  @Test func caBundleTrustsTheSelfSignedCertificate() async throws {
    try await fixture.withServer([]) { url in
      let trusted = client(TLSPolicy(caBundlePath: fixture.cert))
      defer { trusted.shutdown() }
      let r = try await trusted.execute(HTTPRequest(url: url))
      #expect(r.status == 200)
      let system = client(TLSPolicy())
      defer { system.shutdown() }
      await expectCurlError(.tls) { _ = try await system.execute(HTTPRequest(url: url)) }
    }
  }

  @Test func pinnedKeyMustMatch() async throws {
    try await fixture.withServer([]) { url in
      let good = client(TLSPolicy(pinnedKeys: ["127.0.0.1": [fixture.pin]], caBundlePath: fixture.cert))
      defer { good.shutdown() }
      let goodStatus = try await good.execute(HTTPRequest(url: url)).status
      #expect(goodStatus == 200)
      // One good pin among several is enough.
      let oneOf = client(
        TLSPolicy(
          pinnedKeys: ["127.0.0.1": ["sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", fixture.pin]], caBundlePath: fixture.cert))
      defer { oneOf.shutdown() }
      let oneOfStatus = try await oneOf.execute(HTTPRequest(url: url)).status
      #expect(oneOfStatus == 200)
      let bad = client(
        TLSPolicy(pinnedKeys: ["127.0.0.1": ["sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="]], caBundlePath: fixture.cert))
      defer { bad.shutdown() }
      await expectCurlError(.pinMismatch) { _ = try await bad.execute(HTTPRequest(url: url)) }
    }
  }

  @Test func minimumVersionIsEnforced() async throws {
    try await fixture.withServer(["-tls1_2"]) { url in
      let min13 = client(TLSPolicy(minimumVersion: .tls13, caBundlePath: fixture.cert))
      defer { min13.shutdown() }
      await expectCurlError(.tls) { _ = try await min13.execute(HTTPRequest(url: url)) }
      let min12 = client(TLSPolicy(minimumVersion: .tls12, caBundlePath: fixture.cert))
      defer { min12.shutdown() }
      let min12Status = try await min12.execute(HTTPRequest(url: url)).status
      #expect(min12Status == 200)
    }
  }

  @Test func tls13CipherSuitesAreRestricted() async throws {
    try await fixture.withServer(["-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256"]) { url in
      let other = client(
        TLSPolicy(
          minimumVersion: .tls13, tls13CipherSuites: ["TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"], caBundlePath: fixture.cert)
      )
      defer { other.shutdown() }
      await expectCurlError(.tls) { _ = try await other.execute(HTTPRequest(url: url)) }
      let same = client(TLSPolicy(minimumVersion: .tls13, tls13CipherSuites: ["TLS_AES_128_GCM_SHA256"], caBundlePath: fixture.cert))
      defer { same.shutdown() }
      let sameStatus = try await same.execute(HTTPRequest(url: url)).status
      #expect(sameStatus == 200)
    }
  }
}

/// HTTP/2 against nghttpd (Debian's nghttp2-server), over TLS (ALPN) and cleartext (prior knowledge).
@Suite(
  .serialized,
  .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/sbin/nghttpd"), "needs nghttpd (apt-get install nghttp2-server)"))
struct HTTP2Tests {
  let fixture: TLSFixture
  init() throws {
    fixture = try TLSFixture()
    try "hello over h2".write(to: fixture.dir.appendingPathComponent("hello.txt"), atomically: true, encoding: .utf8)
  }

  func withNghttpd<T>(tls: Bool, _ body: (Int) async throws -> T) async throws -> T {
    let port = try Processes.freePort()
    var args = ["/usr/sbin/nghttpd", "--address=127.0.0.1", "-d", fixture.dir.path]
    args += tls ? [String(port), fixture.key, fixture.cert] : ["--no-tls", String(port)]
    let pid = try TLSFixture.spawn(args)
    defer { pid.stop(grace: 1) }
    try await TLSFixture.waitForListener(port)
    return try await body(port)
  }

  @Test func alpnNegotiatesHTTP2AndMultiplexes() async throws {
    try await withNghttpd(tls: true) { port in
      var c = CurlHTTPConfiguration()
      c.tls = TLSPolicy(caBundlePath: fixture.cert)
      c.version = .http2OverTLS
      let client = CurlHTTPClient(configuration: c)
      defer { client.shutdown() }
      let url = "https://127.0.0.1:\(port)/hello.txt"
      let r = try await client.execute(HTTPRequest(url: url))
      #expect(r.status == 200)
      #expect(r.version == .http2)
      #expect(r.bodyText == "hello over h2")
      // Twenty concurrent requests share the one connection.
      let versions = try await withThrowingTaskGroup(of: HTTPVersion?.self) { g in
        for _ in 0..<20 { g.addTask { try await client.execute(HTTPRequest(url: url)).version } }
        return try await g.reduce(into: [HTTPVersion?]()) { $0.append($1) }
      }
      #expect(versions.allSatisfy { $0 == .http2 })
      #expect(client.connectionsOpened == 1)
    }
  }

  @Test func cleartextPriorKnowledge() async throws {
    try await withNghttpd(tls: false) { port in
      var c = CurlHTTPConfiguration()
      c.version = .http2PriorKnowledge
      let client = CurlHTTPClient(configuration: c)
      defer { client.shutdown() }
      let r = try await client.execute(HTTPRequest(url: "http://127.0.0.1:\(port)/hello.txt"))
      #expect(r.version == .http2)
      #expect(r.bodyText == "hello over h2")
    }
  }
}
