import Dispatch
import Synchronization

/// Between synchronous and asynchronous code.
public enum AsyncBridge {
  /// Runs `body` in a new task and blocks the calling thread until it finishes; returns what
  /// it returns, throws what it throws. Call it only from a thread outside Swift's cooperative
  /// pool (the main thread of a command, a `Thread`): blocking a pool thread can starve the
  /// very task waited for.
  public static func wait<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let outcome = Mutex<Result<T, any Error>?>(nil)
    let done = DispatchSemaphore(value: 0)
    Task {
      let r: Result<T, any Error>
      do { r = .success(try await body()) } catch { r = .failure(error) }
      outcome.withLock { $0 = r }
      done.signal()
    }
    done.wait()
    return try outcome.withLock { $0! }.get()
  }

  /// Runs the blocking `body` on a thread outside the cooperative pool and awaits it: a call
  /// that waits on the network (a shared store's round trip) then holds none of the pool's
  /// few threads while it waits, and the other tasks go on. `body` must bound its own wait.
  public static func offload<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
      blocking.async { continuation.resume(with: Result { try body() }) }
    }
  }

  /// `offload` when `blocking` (the call waits on the network), else `body` right here.
  public static func offload<T: Sendable>(when blocking: Bool, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    blocking ? try await offload(body) : try body()
  }

  /// A queue of its own: its work items may block, so each gets a thread when none is free
  /// (a private queue overcommits), where the global queues keep about one per core.
  private static let blocking = DispatchQueue(label: "ytempire.blocking", attributes: .concurrent)
}
