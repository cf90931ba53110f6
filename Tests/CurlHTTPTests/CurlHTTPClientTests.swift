import Basics
import CurlHTTP
import Foundation
import Synchronization
import TestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// Runs `body` against a fresh server and client; both are shut down afterwards.
func withServer<T>(
  _ config: CurlHTTPConfiguration = CurlHTTPConfiguration(),
  _ body: (HTTPTestServer, CurlHTTPClient) async throws -> T
) async throws -> T {
  let server = try await HTTPTestServer.start()
  let client = CurlHTTPClient(configuration: config)
  do {
    let r = try await body(server, client)
    client.shutdown()
    try await server.shutdown()
    return r
  } catch {
    client.shutdown()
    try? await server.shutdown()
    throw error
  }
}

func expectCurlError(_ kind: CurlHTTPError.Kind, _ body: () async throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) async {
  do {
    try await body()
    Issue.record("expected \(kind), got a response", sourceLocation: sourceLocation)
  } catch let e as CurlHTTPError {
    #expect(e.kind == kind, "\(e)", sourceLocation: sourceLocation)
  } catch {
    Issue.record("expected \(kind), got \(error)", sourceLocation: sourceLocation)
  }
}

@Suite struct CurlHTTPClientTests {
  @Test func getReturnsStatusHeadersAndBody() async throws {
    try await withServer { server, client in
      server.route("/hello", .text(201, "hi there", headers: [("X-Thing", "42")]))
      let r = try await client.execute(HTTPRequest(url: server.baseURL + "/hello?x=1", headers: ["Accept": "text/plain"]))
      #expect(r.status == 201)
      #expect(r.bodyText == "hi there")
      #expect(r.headers["x-thing"] == "42")
      #expect(r.version == .http11)
      let seen = server.requests("/hello")
      #expect(seen.count == 1)
      #expect(seen.first?.header("Accept") == "text/plain")
      #expect(seen.first?.uri == "/hello?x=1")
    }
  }

  @Test func postSendsBodyAndMethod() async throws {
    try await withServer { server, client in
      server.route("/items", .text(200, "{}"))
      let body = Array("{\"name\":\"a\"}".utf8)
      let r = try await client.execute(
        HTTPRequest(method: "PUT", url: server.baseURL + "/items", headers: ["Content-Type": "application/json"], body: body))
      #expect(r.status == 200)
      let seen = try #require(server.requests("/items").first)
      #expect(seen.method == "PUT")
      #expect(seen.body == body)
    }
  }

  @Test func keepAliveReusesOneConnection() async throws {
    try await withServer { server, client in
      server.route("/k", .text(200, "ok"))
      for _ in 0..<20 {
        let r = try await client.execute(HTTPRequest(url: server.baseURL + "/k"))
        #expect(r.status == 200)
      }
      #expect(server.hits("/k") == 20)
      #expect(server.connections == 1)
      #expect(client.connectionsOpened == 1)
    }
  }

  @Test func manyConcurrentRequests() async throws {
    try await withServer { server, client in
      server.route("/c", .delayed(.milliseconds(20), .text(200, "ok")))
      let statuses = try await withThrowingTaskGroup(of: Int.self) { g in
        for _ in 0..<48 { g.addTask { try await client.execute(HTTPRequest(url: server.baseURL + "/c")).status } }
        return try await g.reduce(into: [Int]()) { $0.append($1) }
      }
      #expect(statuses.count == 48)
      #expect(statuses.allSatisfy { $0 == 200 })
    }
  }

  @Test(arguments: [false, true]) func oversizedBodyIsRefused(chunked: Bool) async throws {
    var config = CurlHTTPConfiguration()
    config.maxResponseBytes = 100_000
    try await withServer(config) { server, client in
      server.route("/big", .oversized(bytes: 1_000_000, chunked: chunked))
      server.route("/small", .oversized(bytes: 50_000, chunked: chunked))
      await expectCurlError(.bodyTooLarge) { _ = try await client.execute(HTTPRequest(url: server.baseURL + "/big")) }
      let ok = try await client.execute(HTTPRequest(url: server.baseURL + "/small"))
      #expect(ok.body.count == 50_000)
      // A per-request limit overrides the client's.
      await expectCurlError(.bodyTooLarge) {
        _ = try await client.execute(HTTPRequest(url: server.baseURL + "/small", maxResponseBytes: 10_000))
      }
    }
  }

  @Test func connectionResetMidResponse() async throws {
    try await withServer { server, client in
      server.route("/reset", .reset(announced: 10_000, sent: 100))
      server.route("/gone", .closeWithoutResponse)
      await expectCurlError(.connectionLost) { _ = try await client.execute(HTTPRequest(url: server.baseURL + "/reset")) }
      await expectCurlError(.connectionLost) { _ = try await client.execute(HTTPRequest(url: server.baseURL + "/gone")) }
    }
  }

  @Test func totalTimeout() async throws {
    try await withServer { server, client in
      server.route("/slow", .delayed(.seconds(10), .text(200, "late")))
      // A timeout error, not the 200 the server sends after 10 s: no wall-clock bound needed.
      await expectCurlError(.timeout) {
        _ = try await client.execute(HTTPRequest(url: server.baseURL + "/slow", timeout: .milliseconds(300)))
      }
    }
  }

  @Test func lowSpeedAbortsASlowBody() async throws {
    var config = CurlHTTPConfiguration()
    config.lowSpeedLimit = 10_000  // bytes per second
    config.lowSpeedTime = .seconds(1)
    try await withServer(config) { server, client in
      server.route("/drip", .slowBody(status: 200, chunks: 100, chunkSize: 10, interval: .milliseconds(100)))
      // A timeout error, not the full body (which arrives after 10 s): no wall-clock bound needed.
      await expectCurlError(.timeout) { _ = try await client.execute(HTTPRequest(url: server.baseURL + "/drip")) }
    }
  }

  @Test func cancellationAbortsTheTransfer() async throws {
    try await withServer { server, client in
      server.route("/hang", .delayed(.seconds(10), .text(200, "never")))
      let task = Task { try await client.execute(HTTPRequest(url: server.baseURL + "/hang")) }
      while server.hits("/hang") == 0 { try await Task.sleep(for: .milliseconds(5)) }
      task.cancel()
      // Cancelled, not the server's answer after 10 s: no wall-clock bound needed.
      await #expect(throws: CancellationError.self) { _ = try await task.value }
      // The client still works afterwards.
      server.route("/ok", .text(200, "ok"))
      #expect(try await client.execute(HTTPRequest(url: server.baseURL + "/ok")).status == 200)
    }
  }

  @Test func redirectsAreNotFollowedUnlessAsked() async throws {
    try await withServer { server, client in
      server.route("/old", .respond(status: 302, headers: [("Location", "/new")]))
      server.route("/new", .text(200, "moved here"))
      let r = try await client.execute(HTTPRequest(url: server.baseURL + "/old"))
      #expect(r.status == 302)
      #expect(server.hits("/new") == 0)
      let f = try await client.execute(HTTPRequest(url: server.baseURL + "/old", maxRedirects: 3))
      #expect(f.status == 200)
      #expect(f.bodyText == "moved here")
    }
  }

  @Test func explicitProxyIsUsed() async throws {
    // The test server plays the proxy: it sees the absolute URI of the target.
    let proxy = try await HTTPTestServer.start()
    defer { Task { try? await proxy.shutdown() } }
    proxy.route("http://upstream.invalid/x", .text(200, "via proxy"))
    var config = CurlHTTPConfiguration()
    config.proxy = proxy.baseURL
    let client = CurlHTTPClient(configuration: config)
    defer { client.shutdown() }
    let r = try await client.execute(HTTPRequest(url: "http://upstream.invalid/x"))
    #expect(r.bodyText == "via proxy")
    #expect(proxy.hits("http://upstream.invalid/x") == 1)
  }

  @Test func connectionRefusedAndErrorsCarryNoSecrets() async throws {
    // A port bound but not listening (held for the whole test, so no other test can take it): connect is refused.
    let (fd, port) = try Processes.loopbackSocket()
    defer { close(fd) }
    let client = CurlHTTPClient()
    defer { client.shutdown() }
    do {
      _ = try await client.execute(
        HTTPRequest(
          url: "http://user:hunter2@127.0.0.1:\(port)/x?access_token=SECRET123&page=2",
          headers: ["Authorization": "Bearer SECRET123"]))
      Issue.record("expected a failure")
    } catch let e as CurlHTTPError {
      #expect(e.kind == .connectFailed)
      #expect(!"\(e)".contains("SECRET123"))
      #expect(!"\(e)".contains("hunter2"))
      #expect(e.url == "http://[redacted]@127.0.0.1:\(port)/x")
    }
  }
}

@Suite struct RedactionTests {
  @Test func hooksSeeRedactedRequestsAndResponses() async throws {
    let requests = Mutex<[HTTPRequestRecord]>([])
    let responses = Mutex<[HTTPResponseRecord]>([])
    var config = CurlHTTPConfiguration()
    config.hooks = HTTPHooks(
      onRequest: { r in requests.withLock { $0.append(r) } },
      onResponse: { r in responses.withLock { $0.append(r) } })
    try await withServer(config) { server, client in
      server.route(
        "/token",
        .text(
          200, "{\"access_token\":\"AT-SECRET\",\"expires_in\":3599}",
          headers: [("Set-Cookie", "sid=COOKIE-SECRET"), ("Content-Type", "application/json")]))
      let form = "client_id=abc&client_secret=CS-SECRET&refresh_token=RT-SECRET&grant_type=refresh_token"
      let r = try await client.execute(
        HTTPRequest(
          method: "POST", url: server.baseURL + "/token?key=QK-SECRET&part=snippet",
          headers: [
            "Authorization": "Bearer AUTH-SECRET", "X-Vault-Token": "VAULT-SECRET", "X-N8N-API-KEY": "N8N-SECRET",
            "Content-Type": "application/x-www-form-urlencoded",
          ], body: Array(form.utf8)))
      #expect(r.status == 200)
      // The server got the real credentials ...
      let seen = try #require(server.requests("/token").first)
      #expect(seen.header("X-Vault-Token") == "VAULT-SECRET")
      #expect(String(decoding: seen.body, as: UTF8.self).contains("CS-SECRET"))
    }
    // ... the hooks never did.
    let req = try #require(requests.withLock { $0.first })
    let resp = try #require(responses.withLock { $0.first })
    let logged = "\(req) \(resp)"
    for secret in ["AUTH-SECRET", "VAULT-SECRET", "N8N-SECRET", "CS-SECRET", "RT-SECRET", "QK-SECRET", "COOKIE-SECRET"] {
      #expect(!logged.contains(secret), "\(secret) leaked")
    }
    #expect(req.headers["Authorization"] == Redaction.mask)
    #expect(req.body == "client_id=abc&client_secret=[redacted]&refresh_token=[redacted]&grant_type=refresh_token")
    #expect(req.url.hasSuffix("/token?key=[redacted]&part=snippet"))
    #expect(resp.status == 200)
    #expect(resp.headers["Content-Type"] == "application/json")
  }

  @Test func jsonBodiesHaveSecretFieldsMasked() {
    let body = Array(#"{"name":"x","client_secret":"S1","nested":{"refresh_token": "S2"},"note":"token"}"#.utf8)
    let out = Redaction.body(body, contentType: "application/json")!
    #expect(!out.contains("S1"))
    #expect(!out.contains("S2"))
    #expect(out.contains(#""name":"x""#))
    #expect(out.contains(#""note":"token""#))
    #expect(Redaction.body(Array(repeating: 0, count: 10), contentType: "video/mp4") == "<10 bytes video/mp4>")
  }
}
