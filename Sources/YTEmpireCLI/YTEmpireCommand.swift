import ArgumentParser

/// The `ytempire` command line.
public struct YTEmpireCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "ytempire",
        abstract: "GitOps reconciler for automated YouTube channel networks.",
        discussion: "Desired state lives as YAML in a git repository; see docs/resource-model.md.",
        version: YTEmpireVersion.current,
        subcommands: [ValidateCommand.self, PlanCommand.self, ApplyCommand.self, StatusCommand.self, SandboxCommand.self, DebugCommand.self]
    )

    public init() {}
}

public enum YTEmpireVersion {
    public static let current = "0.1.0"
}
