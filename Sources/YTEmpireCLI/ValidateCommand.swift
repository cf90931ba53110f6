import ArgumentParser
import EmpireModel
import Foundation
import GitKit
import Workspace

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
  case text, json
}

struct ValidateCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "validate",
    abstract: "Check a desired-state repository: YAML, resource schemas and cross-resource rules.",
    discussion: """
      Reads every *.yaml / *.yml file under PATH (default: the current directory), honouring \
      .ytempireignore files, and reports every problem compiler-style: \
      file:line:col: severity: message [code]. Exit status 0 when valid (warnings allowed), 1 otherwise.

      With --repo URL (a path, file://, git://, https:// or ssh:// URL) the manifests are read \
      straight from a commit of that repository (no work tree), through a bare mirror under \
      --state-dir; PATH is then the folder inside the repository. An https token is taken from \
      $YTEMPIRE_GIT_TOKEN; an ssh key from $YTEMPIRE_GIT_SSH_KEY with ~/.ssh/known_hosts.         An https certificate must chain to the system CA bundle, or to --ca-file         ($GIT_SSL_CAINFO or $SSL_CERT_FILE when not given). The fetch gives up at         --connect-timeout + --transfer-timeout + 1s.

      With --config F the reconciler configuration (ytempire.yaml) is checked too: alone, only \
      that file; with PATH or --repo, the file and the manifests, in one report. No secret is \
      read: {env: …} and {file: …} references are checked for their form only.
      """
  )

  @Argument(help: "Directory (or single file) holding the manifests; with --repo, the folder inside the repository.")
  var path: String?

  @Option(name: .long, help: "Read the manifests from this git repository instead of the file system.")
  var repo: String?

  @Option(name: .long, help: "Branch, tag, commit id or refs/… name to read with --repo (default: the remote's HEAD).")
  var ref: String?

  @Option(name: .long, help: "Where git mirrors are kept (default: $XDG_CACHE_HOME/ytempire or ~/.cache/ytempire).")
  var stateDir: String?

  @Option(name: .long, help: "With --repo https://…: the PEM CA bundle the server's certificate must chain to.")
  var caFile: String?

  @Option(name: .long, help: "With --repo: deadline for connecting (default 15s).")
  var connectTimeout: String = "15s"

  @Option(name: .long, help: "With --repo: deadline for the transfer once connected (default 5m).")
  var transferTimeout: String = "5m"

  @Option(name: .long, help: "Also check this reconciler configuration (ytempire.yaml); alone, check only it.")
  var config: String?

  @Option(name: .long, help: "Output format: text or json.")
  var output: OutputFormat = .text

  func validate() throws {
    if ref != nil && repo == nil { throw ValidationError("--ref needs --repo") }
    if stateDir != nil && repo == nil { throw ValidationError("--state-dir needs --repo") }
    if caFile != nil && repo == nil { throw ValidationError("--ca-file needs --repo") }
    _ = try gitTimeouts()
  }

  /// The two deadlines, each a duration between 100ms and 24h.
  func gitTimeouts() throws -> GitTimeouts {
    func parse(_ text: String, _ flag: String) throws -> Duration {
      guard let d = ModelDuration.parse(text) else {
        throw ValidationError("\(flag) '\(TextEscape.escape(text))' is not a duration (write e.g. 30s or 5m)")
      }
      let max = ReconcilerConfigLoader.Defaults.maxTimeout
      guard d.milliseconds >= 100, !(max < d) else { throw ValidationError("\(flag) is \(d); write a deadline between 100ms and \(max)") }
      return d.swiftDuration
    }
    return GitTimeouts(connect: try parse(connectTimeout, "--connect-timeout"), transfer: try parse(transferTimeout, "--transfer-timeout"))
  }

  func run() throws {
    let configReport = config.map { ValidationRun.runConfig(path: $0) }
    if let configReport, repo == nil, path == nil {
      try emit(configReport, summary: ValidationRun.configSummary(configReport, path: config!))
      return
    }
    let manifests: ValidationReport
    let summaryName: String
    if let repo {
      let env = ProcessInfo.processInfo.environment
      let outcome = ValidationRun.run(
        repo: repo, ref: ref, path: path ?? ".", stateDir: stateDir ?? ValidationRun.defaultStateDir(),
        timeouts: try gitTimeouts(), caFile: GitSourceConfig.caFile(configured: caFile, environment: env),
        environment: env)
      (manifests, summaryName) = (outcome.report, outcome.summaryName)
    } else {
      (manifests, summaryName) = (ValidationRun.run(path: path ?? ".", skipping: config), path ?? ".")
    }
    var summary = ValidationRun.summary(manifests, path: summaryName)
    var report = manifests
    if let configReport, let config {
      summary = ValidationRun.configSummary(configReport, path: config) + "\n" + summary
      report = ValidationRun.merge(manifests, configReport)
    }
    try emit(report, summary: summary)
  }

  private func emit(_ report: ValidationReport, summary: String) throws {
    switch output {
    case .text:
      let color = Terminal.useColor(STDERR_FILENO)
      var err = ""
      for d in report.diagnostics { err += Terminal.render(d, color: color) + "\n" }
      if report.omitted > 0 {
        err +=
          "… and \(report.omitted) more diagnostic\(report.omitted == 1 ? "" : "s") not shown (at most \(DiagnosticBag.perFileLimit) per file and \(DiagnosticBag.perRunLimit) per run are listed)\n"
      }
      Terminal.write(err, to: .standardError)
      Terminal.write(summary + "\n", to: .standardOutput)
    case .json:
      Terminal.write(ValidationRun.json(report) + "\n", to: .standardOutput)
    }
    if !report.isValid { throw ExitCode(1) }
  }
}
