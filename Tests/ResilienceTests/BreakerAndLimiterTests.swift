import EmpireModel
import Foundation
import Synchronization
import Testing

@testable import Resilience

@Suite struct CircuitBreakerTests {
  func f(_ c: ErrorCategory, reason: String? = nil, status: Int? = 403) -> ServiceFailure {
    ServiceFailure(service: "youtube", category: c, status: status, reason: reason, message: "m")
  }

  @Test func youtubeBreakerLifecycle() throws {
    let clock = ManualClock()
    let transitions = Mutex<[String]>([])
    let settings = CircuitBreaker.Settings(try exampleRateLimit("youtube-api").circuitBreaker)
    #expect(
      settings.failureThreshold == 3 && settings.successThreshold == 2 && settings.halfOpenRequests == 3
        && settings.timeout == .seconds(300))
    let b = CircuitBreaker(service: "youtube", settings: settings, clock: clock) { _, from, to in
      transitions.withLock { $0.append("\(from.rawValue)->\(to.rawValue)") }
    }
    // Unmonitored failures (a 404) do not count.
    for _ in 0..<5 { b.recordFailure(try b.acquire(), f(.validationError, reason: "notFound", status: 404)) }
    #expect(b.snapshot.state == .closed)
    // A success resets the consecutive count.
    b.recordFailure(try b.acquire(), f(.quotaExceeded, reason: "quotaExceeded"))
    b.recordFailure(try b.acquire(), f(.rateLimit, reason: "rateLimitExceeded"))
    b.recordSuccess(try b.acquire())
    #expect(b.snapshot.consecutiveFailures == 0)
    for _ in 0..<3 { b.recordFailure(try b.acquire(), f(.rateLimit, reason: "rateLimitExceeded")) }
    #expect(b.snapshot.state == .open)

    // Open: fails fast, naming the service and when it will try again.
    clock.advance(by: .seconds(100))
    do {
      _ = try b.acquire()
      Issue.record("open breaker admitted a call")
    } catch {
      #expect(error.service == "youtube")
      #expect(error.retryIn == .seconds(200))
      #expect("\(error)".contains("youtube"))
    }
    // After the timeout: half-open, three probes at a time.
    clock.advance(by: .seconds(200))
    #expect(b.snapshot.state == .halfOpen)
    let p1 = try b.acquire()
    let p2 = try b.acquire()
    let p3 = try b.acquire()
    #expect(throws: CircuitOpenError.self) { _ = try b.acquire() }
    b.recordSuccess(p1)
    #expect(b.snapshot.state == .halfOpen)
    b.recordSuccess(p2)
    #expect(b.snapshot.state == .closed)
    b.recordIgnored(p3)
    #expect(transitions.withLock { $0 } == ["closed->open", "open->half_open", "half_open->closed"])
  }

  @Test func failedProbeReopens() throws {
    let clock = ManualClock()
    let b = CircuitBreaker(service: "openai", settings: CircuitBreaker.Settings(nil), clock: clock)  // seed default 5/2/60s/3
    for _ in 0..<4 { b.recordFailure(try b.acquire(), f(.apiError, status: 500)) }
    #expect(b.snapshot.state == .closed)
    b.recordFailure(try b.acquire(), f(.apiError, status: 500))
    #expect(b.snapshot.state == .open)
    clock.advance(by: .seconds(60))
    let probe = try b.acquire()
    b.recordFailure(probe, f(.apiError, status: 500))
    #expect(b.snapshot.state == .open)
    #expect(throws: CircuitOpenError.self) { _ = try b.acquire() }
  }

  @Test func clientErrorsNeverOpenABreakerWithoutAList() throws {
    // A rule set not made yet (404) is the service answering as it should: a plan that
    // observes twenty such zones leaves the breaker closed for the apply that follows.
    let b = CircuitBreaker(service: "cloudflare", settings: CircuitBreaker.Settings(nil), clock: ManualClock())
    for _ in 0..<20 { b.recordFailure(try b.acquire(), f(.validationError, status: 404)) }
    #expect(b.snapshot.state == .closed)
    for _ in 0..<5 { b.recordFailure(try b.acquire(), f(.networkError, status: nil)) }
    #expect(b.snapshot.state == .open)
  }

  @Test func registryUsesTheServiceSettings() throws {
    let yt = try exampleRateLimit("youtube-api")
    let global = try exampleRateLimit("global")
    let reg = BreakerRegistry(clock: ManualClock()) { s in
      s == "youtube" ? .init(yt.circuitBreaker, fallback: global.circuitBreaker) : .init(global.circuitBreaker)
    }
    #expect(reg.breaker("youtube").settings.failureThreshold == 3)
    #expect(reg.breaker("n8n").settings.failureThreshold == 5)
    #expect(reg.breaker("youtube") === reg.breaker("youtube"))
    #expect(reg.states == ["youtube": .closed, "n8n": .closed])
  }
}

@Suite struct RateLimiterTests {
  @Test func tokenBucketBurstThenSpacing() {
    let clock = ManualClock()
    var b = TokenBucket(capacity: 10, per: .seconds(1), now: clock.now)
    for _ in 0..<10 { #expect(b.reserve(1, now: clock.now) == .zero) }
    #expect(b.reserve(1, now: clock.now) == .milliseconds(100))
    #expect(b.reserve(1, now: clock.now) == .milliseconds(200))
    clock.advance(by: .seconds(1))
    #expect(b.reserve(1, now: clock.now) == .zero)  // refilled 10, owed 2: 8 left before this one
  }

  @Test func everyWindowIsEnforced() async throws {
    let clock = ManualClock(autoAdvance: true)
    let spec = try rateLimit("  service: cloudflare\n  requests: {perSecond: 200, per5Minutes: 1200}\n")
    let l = RateLimiter(service: "cloudflare", requests: spec.requests, clock: clock)
    for _ in 0..<200 { try await l.acquire() }
    #expect(clock.elapsed == .zero)  // a burst of one second's worth
    for _ in 0..<1000 { try await l.acquire() }
    // …then 200/s: 1000 more take 5 s.
    #expect(abs(clock.elapsed.seconds - 5) < 0.01)
    // The 5-minute window (1200, refilling at 4/s) now binds: 200 more need 200 - 20 = 180 tokens, 45 s.
    for _ in 0..<200 { try await l.acquire() }
    #expect(abs(clock.elapsed.seconds - 50) < 0.1, "\(clock.elapsed)")
  }

  @Test func tokensAndCharactersAreCosts() throws {
    let clock = ManualClock()
    let spec = try rateLimit("  service: openai\n  requests: {perMinute: 500}\n  tokens: {perMinute: 90000}\n")
    let l = RateLimiter(service: "openai", requests: spec.requests, tokens: spec.tokens, clock: clock)
    #expect(l.reserve(.init(requests: 1, tokens: 60000)) == .zero)
    #expect(l.reserve(.init(requests: 1, tokens: 30000)) == .zero)
    // 1,500 tokens/s refill: 15,000 more tokens is 10 s away.
    #expect(l.reserve(.init(requests: 1, tokens: 15000)) == .seconds(10))
    let el = try rateLimit("  service: elevenlabs\n  characters: {perMinute: 600}\n")
    let chars = RateLimiter(service: "elevenlabs", requests: nil, characters: el.characters, clock: clock)
    #expect(chars.reserve(RateLimiter.Cost(requests: 1, characters: 600)) == .zero)
    #expect(chars.reserve(RateLimiter.Cost(requests: 1, characters: 10)) == .seconds(1))
  }

  @Test func concurrencyLimiterQueuesAndCancels() async throws {
    let sem = ConcurrencyLimiter(limit: 2)
    try await sem.acquire()
    try await sem.acquire()
    #expect(sem.inUse == 2)
    let third = Task {
      try await sem.acquire()
      return "in"
    }
    let fourth = Task {
      try await sem.acquire()
      return "in"
    }
    while sem.waiting < 2 { await Task.yield() }
    fourth.cancel()
    await #expect(throws: CancellationError.self) { _ = try await fourth.value }
    #expect(sem.waiting == 1)
    sem.release()
    #expect(try await third.value == "in")
    #expect(sem.inUse == 2)
    sem.release()
    sem.release()
    #expect(sem.inUse == 0)
  }

  @Test func globalLimiterClassesAndCallsPerMinute() async throws {
    let clock = ManualClock(autoAdvance: true)
    let g = GlobalLimiter(try exampleRateLimit("global").global, clock: clock)
    #expect(g.limiter(.videoUpload).limit == 3)
    #expect(g.limiter(.aiGeneration).limit == 5)
    #expect(g.limiter(.apiRequest).limit == 50)
    let small = GlobalLimiter(try rateLimit("  service: global\n  global: {callsPerMinute: 2}\n").global, clock: clock)
    try await small.run(.apiRequest) {}
    try await small.run(.apiRequest) {}
    try await small.run(.apiRequest) {}
    #expect(clock.sleeps == [.seconds(30)])
  }

  @Test func adaptiveThrottleDoublesAndDecays() throws {
    let a = AdaptiveThrottle(settings: .init(try #require(exampleRateLimit("global").adaptive)))
    #expect(a.delay == .zero)
    a.recordRateLimited()
    #expect(a.factor == 2)
    #expect(a.delay == .milliseconds(500))
    for _ in 0..<5 { a.recordRateLimited() }
    #expect(a.factor == 10)  // maxFactor
    // Healthy calls decay it by ×0.9, never below 1.
    a.record(success: true, latency: .milliseconds(100))
    #expect(abs(a.factor - 9) < 1e-9)
    for _ in 0..<200 { a.record(success: true, latency: .milliseconds(100)) }
    #expect(a.factor == 1)
    // Slow calls degrade it by ×1.1 up to 5.
    let slow = AdaptiveThrottle(settings: .init(try #require(exampleRateLimit("global").adaptive)))
    for _ in 0..<100 { slow.record(success: true, latency: .seconds(4)) }
    #expect(slow.factor == 5)
  }
}
