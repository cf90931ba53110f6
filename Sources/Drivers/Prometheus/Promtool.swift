import Basics
import Foundation

/// Runs `promtool check rules FILE` through `Subprocess` (posix_spawn, a deadline, Foundation's
/// Process was seen to miss a child's exit here), on a thread of its own so the wait never
/// blocks Swift's cooperative pool. stdout and stderr are read together, capped at ``maxOutput``.
enum Promtool {
  struct Output: Sendable {
    var status: Int32
    var output: String
    var timedOut: Bool
  }

  /// Output beyond this many bytes (stdout and stderr together) is dropped.
  static let maxOutput = 64 << 10

  static func run(_ arguments: [String], timeout: TimeInterval) async throws(PrometheusError) -> Output {
    do throws(Subprocess.SpawnError) {
      let r = try await Subprocess.runOnThread(arguments, timeout: timeout, outputLimit: maxOutput, mergingStderr: true)
      return Output(status: r.status, output: String(decoding: r.stdout, as: UTF8.self), timedOut: r.timedOut)
    } catch {
      throw PrometheusError(.promtoolUnavailable, "\(error) (set integrations.prometheus.promtool to its path)")
    }
  }
}
