import CurlHTTP
import EmpireModel
import Foundation
import Synchronization
import TestSupport
import Testing

@testable import Resilience

/// The whole call path against the loopback server; time is a ManualClock that jumps over every
/// delay, so retries and Retry-After are checked exactly without sleeping.
@Suite struct ResilientHTTPTests {
  struct Rig {
    let server: HTTPTestServer
    let http = CurlHTTPClient()
    let clock = ManualClock(wall: date("2026-06-10T12:00:00Z"), autoAdvance: true)
    let breakers: BreakerRegistry
    let client: ResilientHTTP
    init(_ specYAML: String, ledger: (RateLimitSpec, ManualClock) throws -> QuotaLedger? = { _, _ in nil }) async throws {
      server = try await HTTPTestServer.start()
      let spec = try rateLimit(specYAML)
      let clock = self.clock
      breakers = BreakerRegistry(clock: clock) { _ in CircuitBreaker.Settings(spec.circuitBreaker) }
      let limits = ServiceLimits(spec: spec, service: spec.service, ledger: try ledger(spec, clock), clock: clock)
      client = ResilientHTTP(
        http: http, limits: limits, breakers: breakers, global: GlobalLimiter(nil, clock: clock), clock: clock, random: { 1 })
    }
    func url(_ p: String) -> String { server.baseURL + p }
    func close() async {
      http.shutdown()
      try? await server.shutdown()
    }
  }

  static let retrying =
    "  service: svc\n  retry: {maxRetries: 5, initialDelay: 1s, maxDelay: 60s, multiplier: 2, jitter: true}\n  adaptive: {enabled: true, maxFactor: 10, baseDelay: 500ms}\n"

  @Test func rateLimitedWithRetryAfter() async throws {
    let rig = try await Rig(Self.retrying)
    rig.server.route(
      "/r", [.text(429, #"{"error":{"code":429,"message":"slow down"}}"#, headers: [("Retry-After", "7")]), .text(200, "ok")])
    let r = try await rig.client.send(HTTPRequest(url: rig.url("/r")))
    #expect(r.status == 200)
    #expect(rig.server.hits("/r") == 2)
    // Retry-After (7 s) beats the backoff (1 s). The 429 doubled the adaptive factor to 2 and the
    // failed call (success rate 0 < 0.8) degraded it ×1.1 to 2.2: the retry waited (2.2 − 1) × 0.5 s.
    #expect(rig.clock.sleeps == [.seconds(7), .milliseconds(600)])
    // One success in two is still degraded: ×1.1 again.
    #expect(abs(rig.client.limits.adaptive!.factor - 2.42) < 1e-9)
    await rig.close()
  }

  @Test func burstOf5xxThenSuccess() async throws {
    let rig = try await Rig("  service: svc\n  retry: {initialDelay: 1s, multiplier: 3, jitter: false}\n")
    rig.server.route("/b", [.text(503, "{}"), .text(502, "{}"), .text(500, "{}"), .text(200, "fine")])
    let r = try await rig.client.send(HTTPRequest(url: rig.url("/b")))
    #expect(r.bodyText == "fine")
    #expect(rig.clock.sleeps == [.seconds(1), .seconds(3), .seconds(9)])
    // A fourth 5xx would have exhausted api_error's 3 retries.
    rig.server.route("/b2", .text(503, #"{"errors":["Vault is sealed"]}"#))
    do {
      _ = try await rig.client.send(HTTPRequest(url: rig.url("/b2")))
      Issue.record("expected exhaustion")
    } catch let e as RetriesExhausted {
      #expect(e.attempts == 4)
      #expect(e.last.category == .apiError)
      #expect(e.last.message == "Vault is sealed")
    }
    await rig.close()
  }

  @Test func connectionResetIsANetworkErrorRetriedLinearly() async throws {
    let rig = try await Rig("  service: svc\n  retry: {categories: {network_error: {strategy: linear, baseDelay: 2s, maxRetries: 3}}}\n")
    rig.server.route("/n", [.reset(announced: 1000, sent: 10), .closeWithoutResponse, .text(200, "back")])
    let r = try await rig.client.send(HTTPRequest(url: rig.url("/n")))
    #expect(r.bodyText == "back")
    #expect(rig.clock.sleeps == [.seconds(2), .seconds(4)])
    await rig.close()
  }

  @Test func aPostWhoseAnswerIsCutIsNotSentAgain() async throws {
    let rig = try await Rig("  service: svc\n  retry: {categories: {network_error: {strategy: linear, baseDelay: 2s, maxRetries: 3}}}\n")
    rig.server.route("/insert", [.reset(announced: 1000, sent: 10), .text(200, "created twice")])
    do {
      _ = try await rig.client.send(HTTPRequest(method: "POST", url: rig.url("/insert"), body: Array("{}".utf8)))
      Issue.record("expected OutcomeUnknown")
    } catch let e as OutcomeUnknown {
      #expect(e.method == "POST" && e.description.contains("may or may not have been executed"))
    }
    #expect(rig.server.hits("/insert") == 1)  // an insert that may have landed is never repeated
    // An idempotent PUT after the same failure is retried.
    rig.server.route("/update", [.reset(announced: 1000, sent: 10), .text(200, "ok")])
    let r = try await rig.client.send(HTTPRequest(method: "PUT", url: rig.url("/update"), body: Array("{}".utf8)))
    #expect(r.bodyText == "ok" && rig.server.hits("/update") == 2)
    await rig.close()
  }

  @Test func validationErrorsAreNotRetried() async throws {
    let rig = try await Rig(Self.retrying)
    rig.server.route("/v", .text(400, #"{"message":"request/body/id is read-only"}"#))
    await #expect(throws: RetriesExhausted.self) { _ = try await rig.client.send(HTTPRequest(url: rig.url("/v"))) }
    #expect(rig.server.hits("/v") == 1)
    #expect(rig.clock.sleeps.isEmpty)
    await rig.close()
  }

  @Test func openBreakerFailsFastWithoutCallingTheService() async throws {
    let rig = try await Rig(
      "  service: svc\n  retry: {categories: {api_error: {strategy: none}}}\n  circuitBreaker: {failureThreshold: 2, timeout: 30s}\n")
    rig.server.route("/down", .text(503, "{}"))
    for _ in 0..<2 { await #expect(throws: RetriesExhausted.self) { _ = try await rig.client.send(HTTPRequest(url: rig.url("/down"))) } }
    do {
      _ = try await rig.client.send(HTTPRequest(url: rig.url("/down")))
      Issue.record("expected the breaker to be open")
    } catch let e as CircuitOpenError {
      #expect(e.service == "svc")
      #expect(e.retryIn == .seconds(30))
    }
    #expect(rig.server.hits("/down") == 2)
    #expect(rig.breakers.states["svc"] == .open)
    // After the timeout a probe goes through; the service is back.
    rig.clock.advance(by: .seconds(30))
    rig.server.route("/down", .text(200, "up"))
    #expect(try await rig.client.send(HTTPRequest(url: rig.url("/down"))).status == 200)
    #expect(rig.breakers.states["svc"] == .halfOpen)  // one success of the two needed
    await rig.close()
  }

  @Test func quotaLedgerRefusesBeforeTheWire() async throws {
    let rig = try await Rig(
      "  service: youtube\n  quota: {units: 10, resetAt: \"00:00\", timezone: America/Los_Angeles, costs: {videos.insert: 8}}\n  retry: {deadline: 1h}\n"
    ) { spec, clock in
      try QuotaLedger(service: "youtube", quota: spec.quota!, clock: clock)
    }
    rig.server.route("/upload", .text(200, "{}"))
    _ = try await rig.client.send(HTTPRequest(method: "POST", url: rig.url("/upload"), body: []), operation: "videos.insert")
    do {
      _ = try await rig.client.send(HTTPRequest(method: "POST", url: rig.url("/upload"), body: []), operation: "videos.insert")
      Issue.record("expected the quota to be exhausted")
    } catch let e as QuotaExhausted {
      // Thrown at once: a refusal by the ledger is never slept on until the reset.
      #expect(e.cost == 8 && e.available == 2)
      #expect(e.failure.category == .quotaExceeded)
    }
    #expect(rig.clock.sleeps.allSatisfy { $0 < .seconds(60) })
    #expect(rig.server.hits("/upload") == 1)
    #expect(rig.breakers.states["youtube"] == .closed)  // our own refusal says nothing about YouTube
    await rig.close()
  }

  @Test func fallbackChainSkipsOpenBreakersAndReportsTheProvider() async throws {
    let server = try await HTTPTestServer.start()
    let http = CurlHTTPClient()
    defer { http.shutdown() }
    let chain = try exampleProviderChain("llm")
    #expect(chain.providers.count >= 3)
    let names = chain.providers.map(\.name)
    let clock = ManualClock(autoAdvance: true)
    let breakers = BreakerRegistry(clock: clock)
    // The first provider's breaker is open.
    let first = breakers.breaker(names[0])
    for _ in 0..<5 {
      first.recordFailure(try first.acquire(), ServiceFailure(service: names[0], category: .apiError, status: 500, message: "x"))
    }
    // The second answers 500; the third works.
    server.route("/\(names[1])", .text(500, "{}"))
    server.route("/\(names[2])", .text(200, "served"))
    let result = try await FallbackChain.run(
      chain, breakers: breakers, breakerName: { $0.name },
      { attempt -> String in
        let r = try await http.execute(HTTPRequest(url: server.baseURL + "/\(attempt.provider.name)"))
        if let f = ErrorClassifier.classify(r, service: attempt.provider.name) { throw f }
        return "\(r.bodyText) w=\(attempt.weight) maxTokens=\(attempt.maxTokens.map(String.init) ?? "-")"
      })
    #expect(result.provider == names[2])
    #expect(result.weight == chain.providers[2].weight)
    #expect(result.skipped.map(\.provider) == [names[0], names[1]])
    #expect(result.skipped[0].reason.contains("circuit breaker"))
    #expect(server.hits("/\(names[0])") == 0)
    if let mt = chain.defaults?.maxTokens {
      #expect(result.value.hasSuffix("maxTokens=\(Int((Double(mt) * chain.providers[2].weight).rounded()))"))
    }
    try await server.shutdown()
  }
}

@Suite struct ConfigurationMappingTests {
  @Test func tlsPolicyFromTheExampleSecurityPolicy() throws {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let text = try String(contentsOf: root.appendingPathComponent("examples/empire/security/ytempire.yaml"), encoding: .utf8)
    guard case .securityPolicy(let sp) = try decode(text) else {
      Issue.record("not a SecurityPolicy")
      return
    }
    let tls = TLSPolicy(sp.transport)
    #expect(tls.minimumVersion == .tls13)
    #expect(tls.tls13CipherSuites == ["TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"])
    #expect(!tls.pinnedKeys.isEmpty)
    #expect(tls.pinnedKeys.values.allSatisfy { $0.allSatisfy { $0.hasPrefix("sha256//") } })
    let none = TLSPolicy(nil)
    #expect(none.minimumVersion == nil && none.pinnedKeys.isEmpty && none.caBundlePath == nil)
  }

  @Test func perServiceConcurrencyHoldsOnTheWire() async throws {
    let server = try await HTTPTestServer.start()
    let http = CurlHTTPClient()
    let spec = try rateLimit("  service: n8n\n  concurrency: 2\n")
    let limits = ServiceLimits(spec: spec, service: "n8n")
    let client = ResilientHTTP(http: http, limits: limits, breakers: BreakerRegistry())
    server.route("/w", .delayed(.milliseconds(50), .text(200, "ok")))
    let peak = Peak()
    try await withThrowingTaskGroup(of: Void.self) { g in
      for _ in 0..<8 {
        g.addTask { _ = try await client.send(HTTPRequest(url: server.baseURL + "/w")) }
      }
      // Sample the limiter while the calls run.
      g.addTask {
        for _ in 0..<100 {
          let n = limits.concurrency!.inUse
          peak.see(n)
          try await Task.sleep(for: .milliseconds(3))
        }
      }
      try await g.waitForAll()
    }
    #expect(server.hits("/w") == 8)
    #expect(peak.value == 2)
    #expect(limits.concurrency!.inUse == 0)
    http.shutdown()
    try await server.shutdown()
  }
}

final class Peak: Sendable {
  private let v = Mutex(0)
  func see(_ n: Int) { v.withLock { $0 = max($0, n) } }
  var value: Int { v.withLock { $0 } }
}
