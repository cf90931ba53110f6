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
}
