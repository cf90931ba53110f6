import Foundation
import Synchronization

/// Why a reconcile runs.
public enum Trigger: Sendable, Equatable, CustomStringConvertible {
    case start, poll, drift, reload
    case webhook(String)
    public var description: String {
        switch self {
        case .start: "start"
        case .poll: "poll"
        case .drift: "drift check"
        case .reload: "configuration reloaded"
        case .webhook(let why): "webhook (\(why))"
        }
    }
}

/// Serialises reconciles: one at a time, triggered by the poll timer (interval with jitter),
/// webhooks, drift checks and reloads. Triggers that arrive while a reconcile runs fold into one
/// next run (a webhook wins over a poll, so the log names it).
public final class ReconcileLoop: Sendable {
    private struct State {
        var pending: Trigger?
        var waiter: CheckedContinuation<Trigger?, Never>?
        var stopped = false
    }
    private let state = Mutex(State())
    private let interval: @Sendable () -> Duration?
    private let jitter: Double
    private let sleep: @Sendable (Duration) async throws -> Void
    private let random: @Sendable () -> Double

    /// `interval` is read before every sleep (SIGHUP may change it); nil = no polling.
    public init(interval: @escaping @Sendable () -> Duration?, jitter: Double = 0.1,
                sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) },
                random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }) {
        self.interval = interval; self.jitter = max(0, min(jitter, 1)); self.sleep = sleep; self.random = random
    }

    static func merge(_ old: Trigger?, _ new: Trigger) -> Trigger {
        guard let old else { return new }
        if case .webhook = new { return new }
        if case .webhook = old { return old }
        return old == .poll ? new : old
    }

    public func trigger(_ t: Trigger) {
        let w: CheckedContinuation<Trigger?, Never>? = state.withLock { s in
            guard !s.stopped else { return nil }
            if let w = s.waiter { s.waiter = nil; return w }
            s.pending = Self.merge(s.pending, t)
            return nil
        }
        w?.resume(returning: t)
    }

    /// Asked by the engine before each action.
    public var isStopping: Bool { state.withLock { $0.stopped } }

    /// Graceful shutdown: the reconcile in progress finishes its action in flight, then `run` returns.
    public func stop() {
        let w = state.withLock { s -> CheckedContinuation<Trigger?, Never>? in
            s.stopped = true
            defer { s.waiter = nil }
            return s.waiter
        }
        w?.resume(returning: nil)
    }

    private func next() async -> Trigger? {
        await withCheckedContinuation { (c: CheckedContinuation<Trigger?, Never>) in
            let now: Trigger?? = state.withLock { s in
                if s.stopped { return .some(nil) }
                if let p = s.pending { s.pending = nil; return .some(p) }
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
            await cycle(t)
            if isStopping { break }
        }
    }
}
