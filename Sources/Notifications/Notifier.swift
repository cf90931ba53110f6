import Basics
import CurlHTTP
import EmpireModel
import Foundation
import Resilience
import Synchronization

/// Where the last state sent per sink and condition is kept, so a condition that holds over
/// many polls (and many `apply` runs) is announced once. The workspace keeps it in the state store.
public protocol NotificationMemory: Sendable {
  func load() -> [String: String]
  func save(_ sent: [String: String])
}

/// Delivers events and commit statuses to the configured sinks (docs/notifications.md):
/// one bounded queue and one worker per sink, retries with backoff and jitter, a rate limit
/// per sink, one delivery per condition transition. `post` never waits and never throws: a
/// sink that is slow or down costs a reconcile nothing.
public final class Notifier: Sendable {
  public enum Outcome: String, Sendable, CaseIterable {
    /// The sink answered 2xx.
    case delivered
    /// Retries ran out, the sink's timeout passed, or its credentials could not be read.
    case failed
    /// The sink's queue was full: the oldest waiting delivery was dropped.
    case dropped
  }

  /// At most this many deliveries wait per sink; one more drops the oldest.
  public static let queueLimit = 100
  /// At most this many (sink, condition) states are remembered.
  static let memoryLimit = 2000

  struct Job: Sendable {
    /// Sends it (through the worker's retries) and says how it went.
    var perform: @Sendable (ResolvedSink, Worker) async -> Outcome
    var what: String
    /// Undone when the delivery fails, so the next poll tries again.
    var memoryKey: String?
    var state: String?
  }

  final class SinkQueue: Sendable {
    let config: NotificationSink
    let jobs: AsyncStream<Job>
    let input: AsyncStream<Job>.Continuation
    init(_ config: NotificationSink) {
      self.config = config
      (jobs, input) = AsyncStream<Job>.makeStream(bufferingPolicy: .bufferingNewest(Notifier.queueLimit))
    }
  }

  struct State {
    var sent: [String: String]?
    var counts: [String: [Outcome: Int]] = [:]
    var pending = 0
    var idle: [CheckedContinuation<Void, Never>] = []
  }

  /// The state behind one lock, shared with the workers (a `Mutex` itself cannot be captured).
  final class Box: Sendable {
    let m = Mutex(State())
    func withLock<R>(_ body: (inout State) -> R) -> R { m.withLock { body(&$0) } }
  }

  public let sinks: [NotificationSink]
  private let queues: [SinkQueue]
  private let workers: [Task<Void, Never>]
  private let state = Box()
  private let memory: (any NotificationMemory)?
  private let statusPage: String?

  /// - Parameters:
  ///   - resolve: reads a sink's credentials (on its first delivery; a failure fails that delivery, logged).
  ///   - statusPage: the status page's URL (`serve.externalURL`), linked from every message.
  public init(
    sinks: [NotificationSink], resolve: @escaping @Sendable (NotificationSink) throws -> ResolvedSink, transport: any HTTPTransport,
    clock: any ResilienceClock = SystemClock(), memory: (any NotificationMemory)? = nil, statusPage: String? = nil,
    random: @escaping RandomSource = { Double.random(in: 0..<1) }, log: @escaping @Sendable (String) -> Void = { _ in }
  ) {
    self.sinks = sinks
    self.memory = memory
    self.statusPage = statusPage
    let queues = sinks.map(SinkQueue.init)
    self.queues = queues
    let state = self.state
    var workers: [Task<Void, Never>] = []
    for q in queues {
      let worker = Worker(
        config: q.config, resolve: resolve, transport: transport, clock: clock, random: random, log: log,
        finished: { [memory] job, outcome in
          Self.finish(state, memory: memory, sink: q.config.name, job: job, outcome: outcome)
        })
      workers.append(Task { await worker.run(q.jobs) })
    }
    self.workers = workers
  }

  deinit {
    for q in queues { q.input.finish() }
  }

  /// Stops the workers: what is queued is not delivered.
  public func shutdown() {
    for q in queues { q.input.finish() }
    for w in workers { w.cancel() }
  }

  // MARK: posting

  /// Queues `event` for every sink that wants it and has not been sent this state of its
  /// condition yet. Forge sinks (github, gitlab) take `status(_:)` instead.
  public func post(_ event: NotificationEvent) {
    let page = statusPage
    for q in queues where !q.config.type.isForge && q.config.wants(event.event) {
      guard let selected = event.selected(by: q.config.selector) else { continue }
      let key = "\(q.config.name)\u{1f}\(selected.condition)"
      guard remember(key, selected.state) else { continue }
      let what = selected.event.rawValue
      enqueue(
        q,
        Job(
          perform: { sink, w in await w.deliver(Payloads.request(selected, sink: sink, statusPage: page), sink: sink, what: what) },
          what: what, memoryKey: key, state: selected.state))
    }
  }

  /// Sets the commit status on every forge sink: `pending` always, `success` to sinks that want
  /// `applied`, `failure` to those that want `failed`; the same status of a commit is sent once.
  public func status(_ s: CommitStatus) {
    for q in queues where q.config.type.isForge {
      switch s.state {
      case .success where !q.config.wants(.applied): continue
      case .failure where !q.config.wants(.failed), .error where !q.config.wants(.failed): continue
      default: break
      }
      let key = "\(q.config.name)\u{1f}status/\(s.context)"
      // Its description is not part of the state: a later poll that finds nothing to do does
      // not turn "3 applied" into "in sync" on the same commit.
      let st = "\(s.commit) \(s.state.rawValue)"
      guard remember(key, st) else { continue }
      let what = "status \(s.state.rawValue)"
      enqueue(
        q,
        Job(
          perform: { sink, w in await w.deliver(Payloads.request(s, sink: sink), sink: sink, what: what) }, what: what, memoryKey: key,
          state: st))
    }
  }

  /// Forgets the state of `condition` for every sink: it holds no more, and the next time it
  /// does, it is announced again.
  public func clear(_ condition: String) {
    let changed = state.withLock { s -> [String: String]? in
      loadMemory(&s)
      let keys = queues.map { "\($0.config.name)\u{1f}\(condition)" }
      guard keys.contains(where: { s.sent?[$0] != nil }) else { return nil }
      for k in keys { s.sent?[k] = nil }
      return s.sent
    }
    if let changed { memory?.save(changed) }
  }

  /// Waits until every queued delivery is done or `limit` has passed; true when all were done.
  /// `apply` calls it before exiting; `serve` never waits.
  public func flush(within limit: Duration, clock: any ResilienceClock = SystemClock()) async -> Bool {
    if state.withLock({ $0.pending == 0 }) { return true }
    return await withTaskGroup(of: Bool.self) { group in
      group.addTask {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
          let now = self.state.withLock { s -> Bool in
            if s.pending == 0 { return true }
            s.idle.append(c)
            return false
          }
          if now { c.resume() }
        }
        return true
      }
      group.addTask {
        try? await clock.sleep(for: limit)
        return false
      }
      let first = await group.next() ?? false
      group.cancelAll()
      // Release a waiter still parked (the sleep won): resume it so the group can end.
      if !first {
        let waiting = state.withLock { s -> [CheckedContinuation<Void, Never>] in
          defer { s.idle = [] }
          return s.idle
        }
        for c in waiting { c.resume() }
      }
      return first
    }
  }

  /// Deliveries per sink and outcome since start (`ytempire_notifications_total{sink,result}`).
  public var counts: [String: [Outcome: Int]] { state.withLock { $0.counts } }

  /// How many deliveries are queued or in flight.
  public var pending: Int { state.withLock { $0.pending } }

  // MARK: internals

  func queuesFor(_ forge: PullRequestPlan.Forge) -> [SinkQueue] {
    queues.filter { $0.config.type.rawValue == forge.rawValue }
  }

  private func loadMemory(_ s: inout State) {
    if s.sent == nil { s.sent = memory?.load() ?? [:] }
  }

  /// Records `value` as the last state of `key`; false when it already was (a repeat).
  func remember(_ key: String, _ value: String) -> Bool {
    let changed = state.withLock { s -> [String: String]? in
      loadMemory(&s)
      if s.sent?[key] == value { return nil }
      s.sent?[key] = value
      if let n = s.sent?.count, n > Self.memoryLimit {
        // Forget the conditions of sinks no longer configured first, then any.
        let names = Set(queues.map { $0.config.name + "\u{1f}" })
        for k in s.sent!.keys where k != key && !names.contains(where: { k.hasPrefix($0) }) { s.sent![k] = nil }
        while s.sent!.count > Self.memoryLimit, let k = s.sent!.keys.first(where: { $0 != key }) { s.sent![k] = nil }
      }
      return s.sent
    }
    guard let changed else { return false }
    memory?.save(changed)
    return true
  }

  func enqueue(_ q: SinkQueue, _ job: Job) {
    state.withLock { $0.pending += 1 }
    switch q.input.yield(job) {
    case .enqueued: break
    case .dropped(let old):
      Self.finish(state, memory: memory, sink: q.config.name, job: old, outcome: Outcome.dropped)
    case .terminated:
      Self.finish(state, memory: memory, sink: q.config.name, job: job, outcome: Outcome.dropped)
    @unknown default: break
    }
  }

  static func finish(_ state: Box, memory: (any NotificationMemory)?, sink: String, job: Job, outcome: Outcome) {
    let (waiters, changed) = state.withLock { s -> ([CheckedContinuation<Void, Never>], [String: String]?) in
      s.counts[sink, default: [:]][outcome, default: 0] += 1
      s.pending -= 1
      var changed: [String: String]?
      // Not told: the condition's next poll tries again.
      if outcome != .delivered, let k = job.memoryKey, s.sent?[k] == job.state {
        s.sent?[k] = nil
        changed = s.sent
      }
      guard s.pending == 0 else { return ([], changed) }
      defer { s.idle = [] }
      return (s.idle, changed)
    }
    if let changed { memory?.save(changed) }
    for w in waiters { w.resume() }
  }
}

/// The delivery loop of one sink.
struct Worker: Sendable {
  let config: NotificationSink
  let resolve: @Sendable (NotificationSink) throws -> ResolvedSink
  let transport: any HTTPTransport
  let clock: any ResilienceClock
  let random: RandomSource
  let log: @Sendable (String) -> Void
  let finished: @Sendable (Notifier.Job, Notifier.Outcome) -> Void

  /// Retries of a delivery: a 5xx or a cut connection three times, a 429 four times (waiting
  /// at least its Retry-After), a 4xx never; full jitter, at most 30 s apart, all within the sink's timeout.
  static var policy: RetryPolicy {
    var p = RetryPolicy(nil)
    p.categories[.apiError] = .init(strategy: .exponential, maxRetries: 3, baseDelay: .seconds(1), retryAfter: nil, fallback: .fail)
    p.categories[.rateLimit] = .init(strategy: .exponential, maxRetries: 4, baseDelay: .seconds(1), retryAfter: nil, fallback: .fail)
    p.categories[.networkError] = .init(strategy: .linear, maxRetries: 3, baseDelay: .seconds(1), retryAfter: nil, fallback: .fail)
    p.categories[.quotaExceeded] = .init(strategy: .none, maxRetries: 0, baseDelay: nil, retryAfter: nil, fallback: .fail)
    p.maxDelay = .seconds(30)
    p.jitter = true
    return p
  }

  func run(_ jobs: AsyncStream<Notifier.Job>) async {
    let limiter = RateLimiter(
      service: "notifications/\(config.name)", requests: RateLimitSpec.Requests(perMinute: config.perMinute), clock: clock)
    var resolved: Result<ResolvedSink, any Error>?
    for await job in jobs {
      if resolved == nil { resolved = Result { try resolve(config) } }
      guard case .success(let sink) = resolved! else {
        if case .failure(let e) = resolved! {
          log("notification \(job.what) to \(config.name) not sent: its credentials could not be read (\(e))")
        }
        finished(job, .failed)
        continue
      }
      // Waits for the sink's rate limit; cancelled only at shutdown.
      do { try await limiter.acquire() } catch {
        finished(job, .failed)
        continue
      }
      finished(job, await job.perform(sink, self))
    }
  }

  func deliver(_ request: HTTPRequest?, sink: ResolvedSink, what: String) async -> Notifier.Outcome {
    guard let request else { return .failed }
    do {
      _ = try await send(request, what: what)
      return .delivered
    } catch {
      // The URL of a chat sink is its credential: never in the log.
      log("notification \(what) to \(config.name) failed: \(Redaction.scrub("\(error)", secrets: sink.secrets, urls: true))")
      return .failed
    }
  }

  /// One request with the sink's retries, within its timeout; a non-2xx answer throws.
  func send(_ request: HTTPRequest, what: String) async throws -> HTTPResponse {
    let service = "notifications/\(config.name)"
    let timeout = config.timeout.swiftDuration
    var retrier = Retrier(policy: Self.policy, clock: clock, random: random)
    retrier.deadline = (clock.now.advanced(by: timeout), "the sink's timeout of \(config.timeout)")
    let r = retrier
    let transport = self.transport
    return try await Deadline.run(
      timeout, clock: clock,
      exceeded: { DeadlineExceeded(what: "\(service) \(what)", limit: timeout, setting: "notifications[].timeout") },
      {
        try await r.run { _ in
          let response: HTTPResponse
          do {
            response = try await transport.execute(request)
          } catch let e as CurlHTTPError {
            throw ErrorClassifier.classify(e, service: service)
          }
          if let f = ErrorClassifier.classify(response, service: service) { throw f }
          return response
        }
      })
  }
}
