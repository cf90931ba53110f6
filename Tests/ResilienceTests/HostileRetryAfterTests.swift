import CurlHTTP
import EmpireModel
import Foundation
import TestSupport
import Testing

@testable import Resilience

/// Issue 16 item 1: a Retry-After of `inf` or `1e16` crashed every command (SIGILL converting
/// the Double to Int64). Numbers from outside are range-checked where they are parsed, and a
/// wait out of reach is deferred, never slept on.
@Suite struct HostileRetryAfterTests {
  let now = date("2026-06-10T12:00:00Z")

  @Test("Retry-After values: huge and infinite ones are clamped to a day, negative and NaN ignored")
  func parsed() {
    let day = ErrorClassifier.maxRetryAfter
    #expect(day == .seconds(86_400))
    for v in [
      "inf", "+inf", "infinity", "1e16", "1e308", "1e309", "99999999999999999999999999", "86400", "86401", "Fri, 31 Dec 9999 23:59:59 GMT",
    ] {
      #expect(ErrorClassifier.parseRetryAfter(v, now: now) == day, "\(v)")
    }
    for v in ["nan", "-1", "-inf", "-0.5", "", "soon", "0x"] {
      #expect(ErrorClassifier.parseRetryAfter(v, now: now) == nil, "\(v)")
    }
    #expect(ErrorClassifier.parseRetryAfter("1.5", now: now) == .milliseconds(1500))
    #expect(ErrorClassifier.parseRetryAfter(" 42 ", now: now) == .seconds(42))
    #expect(ErrorClassifier.parseRetryAfter("0", now: now) == .zero)
  }

  @Test("Duration.secondsDouble saturates instead of trapping")
  func saturates() {
    #expect(Duration.secondsDouble(.infinity) == .milliseconds(Int64(Duration.maxSeconds * 1000)))
    #expect(Duration.secondsDouble(-.infinity) == .milliseconds(-Int64(Duration.maxSeconds * 1000)))
    #expect(Duration.secondsDouble(.nan) == .zero)
    #expect(Duration.secondsDouble(1e300) == Duration.secondsDouble(.infinity))
    #expect(Duration.secondsDouble(2.5) == .milliseconds(2500))
    #expect(Duration.seconds(86_400).spelled == "1d")
    #expect(Duration.seconds(330).spelled == "5m30s")
  }

  @Test("a Retry-After beyond the cap, the quota reset or the caller's limit is deferred at once, never slept on")
  func deferred() async throws {
    func run(_ retryAfter: Duration, untilReset: Duration?, maxWait: Duration?) async -> (any Error)? {
      let clock = ManualClock(autoAdvance: true)
      let reset: @Sendable () -> Duration? = { untilReset }
      var r = Retrier(policy: RetryPolicy(nil), clock: clock, random: { 0.5 }, untilReset: reset)
      r.maxWait = maxWait
      do {
        _ = try await r.run { _ -> Int in
          throw ServiceFailure(service: "svc", category: .rateLimit, status: 429, message: "slow down", retryAfter: retryAfter)
        }
        return nil
      } catch {
        #expect(clock.sleeps.isEmpty, "slept \(clock.sleeps)")
        return error
      }
    }
    let capped = await run(ErrorClassifier.maxRetryAfter, untilReset: nil, maxWait: nil)
    let e = try #require(capped as? RetryAfterDeferral)
    #expect(
      e.description
        == "svc: rate_limit (HTTP 429): slow down — the service asks to wait 1d (Retry-After), at least the 1d ytempire ever waits; deferred to a later run"
    )
    let pastReset = try #require(await run(.seconds(7200), untilReset: .seconds(3600), maxWait: nil) as? RetryAfterDeferral)
    #expect(pastReset.why == "beyond the quota reset in 1h")
    let pastLimit = try #require(await run(.seconds(600), untilReset: nil, maxWait: .seconds(330)) as? RetryAfterDeferral)
    #expect(pastLimit.why == "longer than the 5m30s a run waits for a retry")
  }

  @Test("Retry-After: inf and 1e16 over loopback: the call is deferred, nothing sleeps, nothing traps")
  func overTheWire() async throws {
    let server = try await HTTPTestServer.start()
    let http = CurlHTTPClient()
    let clock = ManualClock(wall: now, autoAdvance: true)
    let spec = try rateLimit("  service: svc\n  retry: {maxRetries: 5, initialDelay: 1s, maxDelay: 60s}\n")
    let client = ResilientHTTP(
      http: http, limits: ServiceLimits(spec: spec, service: "svc", clock: clock),
      breakers: BreakerRegistry(clock: clock) { _ in CircuitBreaker.Settings(nil) }, clock: clock, random: { 1 })
    for value in ["inf", "1e16", "Fri, 31 Dec 9999 23:59:59 GMT"] {
      server.route("/r-\(value.count)", .text(429, #"{"error":{"code":429,"message":"slow down"}}"#, headers: [("Retry-After", value)]))
      do {
        _ = try await client.send(HTTPRequest(url: server.baseURL + "/r-\(value.count)"))
        Issue.record("expected a deferral for Retry-After: \(value)")
      } catch let e as RetryAfterDeferral {
        #expect(e.wait == ErrorClassifier.maxRetryAfter)
        #expect(e.last.status == 429)
      }
      #expect(server.hits("/r-\(value.count)") == 1)
    }
    #expect(clock.sleeps.allSatisfy { $0 < .seconds(60) }, "\(clock.sleeps)")
    http.shutdown()
    try await server.shutdown()
  }
}
