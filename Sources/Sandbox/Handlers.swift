import Foundation

/// The sandbox's request handlers without its HTTP server: what the fuzzer drives
/// (Fuzz/Sources/fuzz-sandbox). Each `run` starts from the same initial world (seeded once,
/// never written to a file), so one input cannot change what the next one sees.
public struct SandboxHandlers: Sendable {
  private let world: World
  private let report: SeedReport
  private let clock: SandboxClock

  /// Seeds like `ytempire sandbox` (options.seedFrom, credentials, quotas); the state file and
  /// faults are not used.
  public init(_ options: SandboxOptions = SandboxOptions()) throws {
    var o = options
    o.statePath = nil
    (world, report, _) = try SandboxServer.initialWorld(o)
    clock = options.clock
  }

  /// Answers `requests` in order against a fresh copy of the initial world.
  public func run(_ requests: [SandboxRequest]) async -> [SandboxResponse] {
    let core = SandboxCore(world: world, clock: clock, store: nil, seed: report)
    var out: [SandboxResponse] = []
    for r in requests { out.append(await core.respond(r)) }
    await core.close()
    return out
  }
}
