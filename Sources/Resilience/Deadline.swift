import CurlHTTP
import EmpireModel
import Foundation

/// Work that did not finish within its deadline. The message names the deadline's setting
/// (`deadlines.call`, `deadlines.observe`) so a person knows what to raise.
public struct DeadlineExceeded: Error, Sendable, CustomStringConvertible {
  /// What was given up ("youtube call", "observing through YouTube").
  public var what: String
  public var limit: Duration
  /// The configuration key of the deadline, if it has one.
  public var setting: String?
  public init(what: String, limit: Duration, setting: String? = nil) {
    self.what = what
    self.limit = limit
    self.setting = setting
  }
  public var description: String {
    "\(what) did not finish within its deadline of \(Deadline.format(limit))" + (setting.map { " (\($0) in ytempire.yaml)" } ?? "")
  }
}

public enum Deadline {
  /// Runs `body`, cancelling it when `limit` has passed on `clock` and then throwing
  /// `exceeded()`. Whatever `body` waits on (a transfer, a retry sleep, a rate limiter) is
  /// cancelled with it; cancelling the caller cancels both.
  public static func run<T: Sendable>(
    _ limit: Duration, clock: any ResilienceClock, exceeded: @escaping @Sendable () -> any Error,
    _ body: @escaping @Sendable () async throws -> T
  ) async throws -> T {
    try await withThrowingTaskGroup(of: Optional<T>.self) { group in
      group.addTask { try await body() }
      group.addTask {
        try await clock.sleep(for: limit)
        return nil
      }
      defer { group.cancelAll() }
      // The first to finish decides: the body's result (or error), or the deadline.
      guard let first = try await group.next(), let value = first else {
        try Task.checkCancellation()
        throw exceeded()
      }
      return value
    }
  }

  /// "30s", "6m", "1m30s", "500ms".
  public static func format(_ d: Duration) -> String {
    let ms = Int64((d.seconds * 1000).rounded())
    return ModelDuration(milliseconds: max(0, ms)).description
  }
}

extension CurlHTTPConfiguration {
  /// The transport of a run: each request (one attempt) is bounded by `deadlines.request`,
  /// its connection by at most 10 s of it, and a transfer that stalls by the same deadline.
  public init(deadlines: ReconcilerConfig.Deadlines) {
    self.init()
    let request = deadlines.request.swiftDuration
    totalTimeout = request
    connectTimeout = min(connectTimeout, request)
    lowSpeedTime = min(lowSpeedTime, request)
  }
}
