import CurlHTTP
import EmpireModel
import Foundation
import Synchronization
import Testing

@testable import Resilience

@Suite struct ClassificationTests {
  func classify(_ status: Int, _ body: String, headers: HTTPHeaders = [:]) -> ServiceFailure? {
    ErrorClassifier.classify(
      HTTPResponse(status: status, headers: headers, body: Array(body.utf8)), service: "svc", now: date("2026-01-01T00:00:00Z"))
  }

  @Test func youtubeReasons() throws {
    let quota = try #require(
      classify(
        403,
        #"{"error":{"code":403,"message":"The request cannot be completed because you have exceeded your <a href=\"/youtube/v3/getting-started#quota\">quota</a>.","errors":[{"message":"…","domain":"youtube.quota","reason":"quotaExceeded"}]}}"#
      ))
    #expect(quota.category == .quotaExceeded)
    #expect(quota.reason == "quotaExceeded")
    #expect(quota.message.hasPrefix("The request cannot be completed"))
    #expect(classify(403, #"{"error":{"code":403,"errors":[{"reason":"rateLimitExceeded"}]}}"#)?.category == .rateLimit)
    #expect(classify(403, #"{"error":{"code":403,"errors":[{"reason":"userRateLimitExceeded"}]}}"#)?.category == .rateLimit)
    #expect(classify(403, #"{"error":{"code":403,"errors":[{"reason":"forbidden"}]}}"#)?.category == .validationError)
    #expect(classify(503, #"{"error":{"code":503,"errors":[{"reason":"backendError"}]}}"#)?.category == .apiError)
    #expect(classify(404, #"{"error":{"code":404,"errors":[{"reason":"playlistNotFound"}]}}"#)?.reason == "playlistNotFound")
    #expect(classify(200, "{}") == nil)
  }

  @Test func cloudflareVaultN8nAndOAuth() throws {
    let cf = try #require(
      classify(
        429, #"{"success":false,"errors":[{"code":971,"message":"Please wait and consider throttling your request speed"}],"result":null}"#)
    )
    #expect(cf.category == .rateLimit)
    #expect(cf.reason == "971")
    #expect(cf.retryAfter == .seconds(300))  // blocked for five minutes when no header says otherwise
    let cfHeader = try #require(classify(429, #"{"success":false,"errors":[{"code":971,"message":"x"}]}"#, headers: ["retry-after": "42"]))
    #expect(cfHeader.retryAfter == .seconds(42))
    #expect(classify(404, #"{"success":false,"errors":[{"code":10003,"message":"could not find entrypoint ruleset"}]}"#)?.reason == "10003")
    let sealed = try #require(classify(503, #"{"errors":["Vault is sealed"]}"#))
    #expect(sealed.category == .apiError)
    #expect(sealed.message == "Vault is sealed")
    let denied = try #require(classify(403, #"{"errors":["1 error occurred:\n\t* permission denied\n\n"]}"#))
    #expect(denied.category == .validationError)
    #expect(denied.message.contains("permission denied"))
    let n8n = try #require(classify(400, #"{"message":"request/body must NOT have additional properties"}"#))
    #expect(n8n.category == .validationError)
    #expect(n8n.message == "request/body must NOT have additional properties")
    let grant = try #require(classify(400, #"{"error":"invalid_grant","error_description":"Token has been expired or revoked."}"#))
    #expect(grant.reason == "invalid_grant")
    #expect(grant.message == "Token has been expired or revoked.")
    #expect(classify(502, "<html>bad gateway</html>")?.category == .apiError)
    #expect(classify(408, "")?.category == .networkError)
  }

  @Test func transportErrors() {
    func c(_ k: CurlHTTPError.Kind) -> ErrorCategory {
      ErrorClassifier.classify(CurlHTTPError(kind: k, curlCode: 0, message: "m", url: "http://x/"), service: "s").category
    }
    #expect(c(.timeout) == .networkError)
    #expect(c(.connectionLost) == .networkError)
    #expect(c(.connectFailed) == .networkError)
    #expect(c(.resolveFailed) == .networkError)
    #expect(c(.pinMismatch) == .validationError)
    #expect(c(.tls) == .validationError)
    #expect(c(.bodyTooLarge) == .validationError)
  }

  @Test func retryAfterSecondsAndHTTPDate() {
    let now = date("2015-10-21T07:27:00Z")
    #expect(ErrorClassifier.parseRetryAfter("120", now: now) == .seconds(120))
    #expect(ErrorClassifier.parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT", now: now) == .seconds(60))
    #expect(ErrorClassifier.parseRetryAfter("Wed, 21 Oct 2015 07:20:00 GMT", now: now) == .zero)  // in the past
    #expect(ErrorClassifier.parseRetryAfter("soon", now: now) == nil)
  }
}

@Suite struct RetryPolicyTests {
  func failure(_ c: ErrorCategory, status: Int? = nil, reason: String? = nil, retryAfter: Duration? = nil) -> ServiceFailure {
    ServiceFailure(service: "youtube", category: c, status: status, reason: reason, message: "m", retryAfter: retryAfter)
  }

  func delays(_ p: RetryPolicy, _ f: ServiceFailure, random: Double = 1, untilReset: Duration? = nil) -> [Duration] {
    var out: [Duration] = []
    for n in 0..<20 {
      guard case .retry(let d) = p.decide(f, categoryAttempt: n, totalAttempt: n, elapsed: .zero, random: random, untilReset: untilReset)
      else { break }
      out.append(d)
    }
    return out
  }

  @Test func youtubeCategoriesFollowTheSeedTable() throws {
    let p = RetryPolicy(try exampleRateLimit("youtube-api").retry)
    // api_error: exponential from 5 s, ×2, 3 retries; random = 1 is the top of the full-jitter range.
    #expect(delays(p, failure(.apiError, status: 503)) == [.seconds(5), .seconds(10), .seconds(20)])
    // Full jitter scales the delay by the random draw.
    #expect(delays(p, failure(.apiError, status: 503), random: 0.5) == [.milliseconds(2500), .seconds(5), .seconds(10)])
    // rate_limit: exponential from 60 s, capped by maxDelay 60 s; the block's maxRetries (5) stops it.
    #expect(delays(p, failure(.rateLimit, status: 429)) == Array(repeating: .seconds(60), count: 5))
    // network_error: linear 2 s steps, 5 retries, no jitter.
    #expect(delays(p, failure(.networkError), random: 0.1) == [.seconds(2), .seconds(4), .seconds(6), .seconds(8), .seconds(10)])
    // validation_error: never retried.
    #expect(delays(p, failure(.validationError, status: 400)) == [])
    // quota_exceeded: scheduled for the next quota reset, however far.
    #expect(
      p.decide(
        failure(.quotaExceeded, status: 403, reason: "quotaExceeded"), categoryAttempt: 0, totalAttempt: 0, elapsed: .zero,
        random: 1, untilReset: .seconds(7200)) == .retry(after: .seconds(7200)))
    if case .retry = p.decide(
      failure(.quotaExceeded, status: 403, reason: "quotaExceeded"), categoryAttempt: 0, totalAttempt: 0, elapsed: .zero,
      random: 1, untilReset: nil)
    {
      Issue.record("no reset known: must give up")
    }
  }

  @Test func retryOnFiltersStatusesAndReasons() throws {
    let p = RetryPolicy(try exampleRateLimit("youtube-api").retry)
    // 501 is an api_error but not in retryOn.statuses.
    #expect(delays(p, failure(.apiError, status: 501)) == [])
    // A 403 is retried when its reason is listed.
    #expect(delays(p, failure(.rateLimit, status: 403, reason: "rateLimitExceeded")) == [])
    #expect(delays(p, failure(.apiError, status: 403, reason: "backendError")).count == 3)
    // Transport failures have no status and are not filtered.
    #expect(delays(p, failure(.networkError)).count == 5)
  }

  @Test func retryAfterIsALowerBoundAndTheDeadlineStopsIt() throws {
    var spec = try exampleRateLimit("youtube-api").retry
    let p = RetryPolicy(spec)
    #expect(delays(p, failure(.apiError, status: 503, retryAfter: .seconds(90))).first == .seconds(90))
    #expect(delays(p, failure(.apiError, status: 503, retryAfter: .seconds(1))).first == .seconds(5))
    spec?.deadline = ModelDuration.parse("30s")
    let d = RetryPolicy(spec)
    #expect(
      d.decide(failure(.apiError, status: 503), categoryAttempt: 0, totalAttempt: 0, elapsed: .seconds(20), random: 1, untilReset: nil)
        == .retry(after: .seconds(5)))
    guard
      case .giveUp(let why) = d.decide(
        failure(.apiError, status: 503), categoryAttempt: 1, totalAttempt: 1, elapsed: .seconds(25), random: 1, untilReset: nil)
    else {
      Issue.record("expected give-up at the deadline")
      return
    }
    #expect(why.contains("deadline"))
  }

  @Test func blockDelaysApplyToCategoriesTheManifestIsSilentOn() throws {
    let p = RetryPolicy(try exampleRateLimit("n8n-api").retry)  // initialDelay 500ms, maxDelay 10s, ×2, maxRetries 3
    #expect(delays(p, failure(.rateLimit, status: 429)) == [.milliseconds(500), .seconds(1), .seconds(2)])
    #expect(delays(p, failure(.apiError, status: 503)) == [.milliseconds(500), .seconds(1), .seconds(2)])
    #expect(delays(p, failure(.networkError)) == [.milliseconds(500), .seconds(1), .milliseconds(1500)])
    // A RateLimit with no retry block gets the seed's table as is.
    let seed = RetryPolicy(nil)
    #expect(delays(seed, failure(.apiError, status: 500)) == [.seconds(5), .seconds(10), .seconds(20)])
    #expect(delays(seed, failure(.rateLimit, status: 429)).count == 5)
  }

  @Test func retrierSleepsOnTheInjectedClock() async throws {
    let clock = ManualClock(autoAdvance: true)
    let r = Retrier(policy: RetryPolicy(try exampleRateLimit("youtube-api").retry), clock: clock, random: { 1 })
    let calls = Counter()
    let v = try await r.run { attempt -> String in
      calls.increment()
      if attempt < 2 { throw ServiceFailure(service: "youtube", category: .apiError, status: 503, message: "busy") }
      return "done"
    }
    #expect(v == "done")
    #expect(calls.value == 3)
    #expect(clock.sleeps == [.seconds(5), .seconds(10)])
    #expect(clock.elapsed == .seconds(15))

    // Exhaustion reports the last failure.
    await #expect(throws: RetriesExhausted.self) {
      _ = try await r.run { _ -> Int in throw ServiceFailure(service: "youtube", category: .validationError, status: 400, message: "bad") }
    }
  }
}

final class Counter: Sendable {
  private let v = Mutex(0)
  func increment() { v.withLock { $0 += 1 } }
  var value: Int { v.withLock { $0 } }
}

@Suite struct RetryWaitLimitTests {
  @Test func aRetryLongerThanTheCallersLimitGivesUpInsteadOfSleeping() async throws {
    let clock = ManualClock(autoAdvance: true)
    var r = Retrier(policy: RetryPolicy(nil), clock: clock, random: { 0.5 }, untilReset: { .seconds(6 * 3600) })
    r.maxWait = .seconds(330)
    let calls = CallCount()
    do {
      _ = try await r.run { _ -> Int in
        calls.bump()
        throw ServiceFailure(service: "youtube", category: .quotaExceeded, status: 403, reason: "quotaExceeded", message: "quota")
      }
      Issue.record("expected RetriesExhausted")
    } catch let e as RetriesExhausted {
      #expect(e.last.category == .quotaExceeded)
      #expect(e.reason.contains("longer than"))
    }
    #expect(calls.value == 1)
    #expect(clock.sleeps.isEmpty)  // the 6 h until the reset were never slept
  }
}

private final class CallCount: Sendable {
  private let n = Mutex(0)
  func bump() { n.withLock { $0 += 1 } }
  var value: Int { n.withLock { $0 } }
}
