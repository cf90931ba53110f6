import ArgumentParser
import Foundation

/// The `ytempire` command line.
public struct YTEmpireCommand: ParsableCommand {
  public static let configuration = CommandConfiguration(
    commandName: "ytempire",
    abstract: "GitOps reconciler for automated YouTube channel networks.",
    discussion: "Desired state lives as YAML in a git repository; see docs/resource-model.md.",
    version: YTEmpireVersion.current,
    subcommands: [
      ValidateCommand.self, PlanCommand.self, ApplyCommand.self, StatusCommand.self, AuditCommand.self, ImportCommand.self,
      ServeCommand.self, InitCommand.self, StateCommand.self,
      SandboxCommand.self, DebugCommand.self,
    ]
  )

  public init() {}

  /// Parses and runs like `main()`, except that a usage error (unknown option, missing value,
  /// a ValidationError) exits 1: ArgumentParser uses 64 (EX_USAGE), and the exit-status
  /// contract of every command is 0, 1 and 2 (docs/cli.md).
  public static func runHonouringExitContract(_ arguments: [String]? = nil) -> Never {
    do {
      var command = try parseAsRoot(arguments)
      try command.run()
    } catch {
      if exitCode(for: error) == .validationFailure {
        FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
        Foundation.exit(1)
      }
      exit(withError: error)
    }
    Foundation.exit(0)
  }
}

public enum YTEmpireVersion {
  public static let current = "0.1.0"

  /// How this binary was compiled: `debug` (assertions on, -Onone) or `release`. Benchmarks
  /// label their figures with it, read from the binary they measure (`ytempire debug build-info`).
  public static var configuration: String { _isDebugAssertConfiguration() ? "debug" : "release" }
}
