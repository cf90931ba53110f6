import Foundation

extension Processes {
  /// `run` on a thread of its own, awaited: an async test that waits for a child process
  /// must not hold one of the cooperative pool's few threads (on a 2-core machine that
  /// stalls every other test of the run).
  public static func runDetached(
    _ args: [String], cwd: String? = nil, env: [String: String] = [:], stdin: String? = nil,
    check: Bool = true
  ) async throws -> Output {
    try await withCheckedThrowingContinuation { (c: CheckedContinuation<Output, any Error>) in
      let t = Thread {
        do { c.resume(returning: try run(args, cwd: cwd, env: env, stdin: stdin, check: check)) } catch { c.resume(throwing: error) }
      }
      t.stackSize = 1 << 20
      t.start()
    }
  }
}
