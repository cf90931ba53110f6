import CurlHTTP
import EmpireModel
import Foundation
import Synchronization
import Testing

@testable import Resilience

/// A server that accepts a request and never answers: `execute` waits until it is cancelled.
final class SilentTransport: HTTPTransport {
  let started = Atomic<Int>(0)
  let cancelled = Atomic<Int>(0)
  func execute(_ request: HTTPRequest) async throws -> HTTPResponse {
    started.add(1, ordering: .sequentiallyConsistent)
    do { try await Task.sleep(for: .seconds(86_400)) } catch {
      cancelled.add(1, ordering: .sequentiallyConsistent)
      throw error
    }
    return HTTPResponse(status: 200)
  }
}

/// `deadlines.call` and `deadlines.request` on the resilient path; time is a ManualClock moved by hand.
@Suite struct DeadlineTests {
  @Test("a call to a silent service is cancelled at its deadline, and the error names deadlines.call")
  func silentServiceGivenUpAtTheCallDeadline() async throws {
    let clock = ManualClock()
    let silent = SilentTransport()
    let spec = try rateLimit("  service: svc\n  retry: {maxRetries: 5, initialDelay: 1s}\n")
    let client = ResilientHTTP(
      http: silent, limits: ServiceLimits(spec: spec, service: "svc", clock: clock),
      breakers: BreakerRegistry(clock: clock) { _ in CircuitBreaker.Settings(nil) }, clock: clock,
      callTimeout: .seconds(120))
    let call = Task { try await client.send(HTTPRequest(url: "http://127.0.0.1:9/x"), operation: "channels.list") }
    // The deadline's timer is the one sleeper; the transfer is in flight.
    await clock.waitForSleepers(1)
    while silent.started.load(ordering: .sequentiallyConsistent) == 0 { await Task.yield() }
    clock.advance(by: .seconds(119))
    #expect(silent.cancelled.load(ordering: .sequentiallyConsistent) == 0, "not before the deadline")
    clock.advance(by: .seconds(1))
    let result = await call.result
    guard case .failure(let error) = result, let e = error as? DeadlineExceeded else {
      Issue.record("expected DeadlineExceeded, got \(result)")
      return
    }
    #expect("\(e)" == "svc channels.list did not finish within its deadline of 2m (deadlines.call in ytempire.yaml)")
    #expect(silent.cancelled.load(ordering: .sequentiallyConsistent) == 1, "the transfer in flight was cancelled")
  }

  @Test("a retry that would start after the call's deadline is not slept on")
  func retryPastTheDeadlineGivesUp() async throws {
    let clock = ManualClock(autoAdvance: true)
    let spec = try rateLimit("  service: svc\n  retry: {maxRetries: 10, initialDelay: 10s, multiplier: 2, jitter: false}\n")
    var retrier = Retrier(policy: RetryPolicy(spec.retry), clock: clock, random: { 1 })
    retrier.deadline = (clock.now.advanced(by: .seconds(25)), "the call's deadline of 25s (deadlines.call)")
    let attempts = Atomic<Int>(0)
    do {
      _ = try await retrier.run { _ -> Int in
        attempts.add(1, ordering: .sequentiallyConsistent)
        throw ServiceFailure(service: "svc", category: .apiError, status: 503, message: "unavailable")
      }
      Issue.record("expected RetriesExhausted")
    } catch let e as RetriesExhausted {
      // Waits of 10s then 20s: the second would start at 30s, after the 25s deadline.
      #expect(clock.sleeps == [.seconds(10)])
      #expect(attempts.load(ordering: .sequentiallyConsistent) == 2)
      #expect(e.reason == "the next try (in 20s) would start after the call's deadline of 25s (deadlines.call)")
    }
  }

  @Test("a cancelled caller cancels what the deadline guards, and no DeadlineExceeded is made up")
  func cancellationIsNotADeadline() async throws {
    let clock = ManualClock()
    let silent = SilentTransport()
    let task = Task {
      try await Deadline.run(.seconds(60), clock: clock, exceeded: { DeadlineExceeded(what: "x", limit: .seconds(60)) }) {
        try await silent.execute(HTTPRequest(url: "http://127.0.0.1:9/"))
      }
    }
    await clock.waitForSleepers(1)
    while silent.started.load(ordering: .sequentiallyConsistent) == 0 { await Task.yield() }
    task.cancel()
    let result = await task.result
    guard case .failure(let error) = result else {
      Issue.record("expected a failure")
      return
    }
    #expect(error is CancellationError, "\(error)")
    #expect(silent.cancelled.load(ordering: .sequentiallyConsistent) == 1)
  }

  @Test("the transport of a run takes deadlines.request for each attempt, its connection and a stalled transfer")
  func transportFromDeadlines() {
    var d = ReconcilerConfig.Deadlines()
    d.request = .seconds(5)
    let c = CurlHTTPConfiguration(deadlines: d)
    #expect(c.totalTimeout == .seconds(5))
    #expect(c.connectTimeout == .seconds(5))
    #expect(c.lowSpeedTime == .seconds(5))
    let defaults = CurlHTTPConfiguration(deadlines: ReconcilerConfig.Deadlines())
    #expect(defaults.totalTimeout == .seconds(30) && defaults.connectTimeout == .seconds(10))
  }
}
