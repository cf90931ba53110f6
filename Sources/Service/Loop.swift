import Foundation
import Synchronization

/// Why a reconcile runs.
public enum Trigger: Sendable, Equatable, CustomStringConvertible {
  case start, poll, drift, reload, leader
  case webhook(String)
  public var description: String {
    switch self {
    case .start: "start"
    case .poll: "poll"
    case .drift: "drift check"
    case .reload: "configuration reloaded"
    case .leader: "took the lead"
    case .webhook(let why): "webhook (\(why))"
    }
  }
}

/// Serialises reconciles: one at a time, triggered by the poll timer (interval with jitter),
/// webhooks, drift checks and reloads. Triggers that arrive while a reconcile runs fold into one
/// next run (a webhook wins over a poll, so the log names it).
public final class ReconcileLoop: Sendable {
  /// Where the reconcile in progress is: what a shutdown may cancel depends on it.
  public enum Phase: Sendable, Equatable {
    case idle
    /// Syncing, observing and planning: nothing is changed yet, a shutdown cancels it at once
    /// (the transfers, retry sleeps and rate-limit waits it is in).
    case observing
    /// Applying: a shutdown lets the action in flight finish for `shutdownGrace`, then
    /// cancels it (its journal entry says it was interrupted; the next plan observes).
    case applying
  }

  /// What `stop()` did about the reconcile in progress.
  public enum StopEffect: Sendable, Equatable {
    case nothingRunning
    case cancelledObservation
    case applyGrace(Duration)
  }

  private struct State {
    var pending: Trigger?
    var waiter: CheckedContinuation<Trigger?, Never>?
    var stopped = false
    var phase = Phase.idle
    var current: Task<Void, Never>?
  }
  private let state = Mutex(State())
  private let interval: @Sendable () -> Duration?
  private let jitter: Double
  private let sleep: @Sendable (Duration) async throws -> Void
  private let random: @Sendable () -> Double
  /// How long a shutdown waits for the action in flight before cancelling it.
  public let shutdownGrace: Duration

  /// `interval` is read before every sleep (SIGHUP may change it); nil = no polling.
  public init(
    interval: @escaping @Sendable () -> Duration?, jitter: Double = 0.1,
    sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) },
    random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
    shutdownGrace: Duration = .seconds(10)
  ) {
    self.interval = interval
    self.jitter = max(0, min(jitter, 1))
    self.sleep = sleep
    self.random = random
    self.shutdownGrace = shutdownGrace
  }

  /// The reconcile in progress says where it is (`.applying` before its first action).
  public func enter(_ phase: Phase) {
    let cancelNow = state.withLock { s -> Task<Void, Never>? in
      guard s.current != nil else { return nil }
      s.phase = phase
      return s.stopped && phase == .observing ? s.current : nil
    }
    cancelNow?.cancel()
  }

  public var phase: Phase { state.withLock { $0.phase } }

  static func merge(_ old: Trigger?, _ new: Trigger) -> Trigger {
    guard let old else { return new }
    if case .webhook = new { return new }
    if case .webhook = old { return old }
    return old == .poll ? new : old
  }

  public func trigger(_ t: Trigger) {
    let w: CheckedContinuation<Trigger?, Never>? = state.withLock { s in
      guard !s.stopped else { return nil }
      if let w = s.waiter {
        s.waiter = nil
        return w
      }
      s.pending = Self.merge(s.pending, t)
      return nil
    }
    w?.resume(returning: t)
  }

  /// Asked by the engine before each action.
  public var isStopping: Bool { state.withLock { $0.stopped } }

  /// Graceful shutdown: an observation in progress is cancelled at once; an apply finishes its
  /// action in flight (for at most `shutdownGrace`, then it is cancelled); then `run` returns.
  @discardableResult
  public func stop() -> StopEffect {
    let (w, current, phase) = state.withLock { s -> (CheckedContinuation<Trigger?, Never>?, Task<Void, Never>?, Phase) in
      s.stopped = true
      defer { s.waiter = nil }
      return (s.waiter, s.current, s.phase)
    }
    w?.resume(returning: nil)
    guard let current else { return .nothingRunning }
    switch phase {
    case .idle:
      return .nothingRunning
    case .observing:
      current.cancel()
      return .cancelledObservation
    case .applying:
      let grace = shutdownGrace
      let sleep = self.sleep
      Task {
        try? await sleep(grace)
        current.cancel()
      }
      return .applyGrace(grace)
    }
  }

  private func next() async -> Trigger? {
    await withCheckedContinuation { (c: CheckedContinuation<Trigger?, Never>) in
      let now: Trigger?? = state.withLock { s in
        if s.stopped { return .some(nil) }
        if let p = s.pending {
          s.pending = nil
          return .some(p)
        }
        s.waiter = c
        return .none
      }
      if case .some(let t) = now { c.resume(returning: t) }
    }
  }

  /// The next poll's delay: `interval` ± `jitter` (uniform).
  public func nextDelay() -> Duration? {
    guard let i = interval() else { return nil }
    return i * (1 + jitter * (2 * random() - 1))
  }

  /// Runs `cycle` once at start, then for every trigger, until `stop()`.
  public func run(_ cycle: @escaping @Sendable (Trigger) async -> Void) async {
    trigger(.start)
    let poller = Task { [self] in
      while !Task.isCancelled && !isStopping {
        // Without polling, look again later in case SIGHUP enabled it.
        let d = nextDelay()
        do { try await sleep(d ?? .seconds(60)) } catch { return }
        if d != nil { trigger(.poll) }
      }
    }
    defer { poller.cancel() }
    while let t = await next() {
      // Its own task, so that `stop()` can cancel it while it observes.
      let task = Task { await cycle(t) }
      let stoppedAlready = state.withLock { s -> Bool in
        s.current = task
        s.phase = .observing
        return s.stopped
      }
      if stoppedAlready { task.cancel() }
      await withTaskCancellationHandler {
        await task.value
      } onCancel: {
        task.cancel()
      }
      state.withLock { s in
        s.current = nil
        s.phase = .idle
      }
      if isStopping { break }
    }
  }
}
