import Basics
import EmpireModel
import Foundation
import GitKit

extension ValidationRun {
  /// Checks a reconciler configuration file: a report with no resources and one file.
  public static func runConfig(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) -> ValidationReport {
    let (_, diagnostics) = ReconcilerConfigLoader.load(path: path, environment: environment)
    return ValidationReport(resources: [], diagnostics: diagnostics, fileCount: 1)
  }

  /// `ytempire.yaml: reconciler configuration: valid` (or its error and warning counts).
  public static func configSummary(_ r: ValidationReport, path: String) -> String {
    var s = "\(TextEscape.escape(path)): reconciler configuration: "
    s += r.isValid ? "valid" : "\(r.errorCount) error\(r.errorCount == 1 ? "" : "s")"
    if r.warningCount > 0 { s += ", \(r.warningCount) warning\(r.warningCount == 1 ? "" : "s")" }
    return s
  }

  /// The manifests' report with the configuration's diagnostics and file added, in report order.
  public static func merge(_ manifests: ValidationReport, _ config: ValidationReport) -> ValidationReport {
    var diagnostics = manifests.diagnostics + config.diagnostics
    diagnostics.sort(by: Diagnostic.reportOrder)
    return ValidationReport(
      resources: manifests.resources, diagnostics: diagnostics,
      fileCount: manifests.fileCount + config.fileCount)
  }
}

/// The validate pipeline shared by the command and tests.
public enum ValidationRun {
  /// `skipping`: a file not to read as a manifest (the `--config` file, when it lies under PATH).
  public static func run(path: String, options: LoadOptions = LoadOptions(), skipping: String? = nil) -> ValidationReport {
    ManifestLoader.loadDirectory(path, options: options, skipping: skipping).report
  }

  /// The outcome of validating a git source: the report and the name its summary uses
  /// (`URL main@sha1:…`).
  public struct GitOutcome: Sendable {
    public var report: ValidationReport
    public var revision: Revision?
    public var summaryName: String
  }

  /// `$XDG_CACHE_HOME/ytempire`, else `~/.cache/ytempire`.
  public static func defaultStateDir() -> String {
    let env = ProcessInfo.processInfo.environment
    if let x = env["XDG_CACHE_HOME"], x.hasPrefix("/") { return x + "/ytempire" }
    return (env["HOME"] ?? NSHomeDirectory()) + "/.cache/ytempire"
  }

  /// Fetches `repo` into a mirror under `stateDir`, resolves `ref` and validates the
  /// manifests of that commit under `path` (relative to the repository). Diagnostics name
  /// files relative to the repository; a source that cannot be read is one error.
  public static func run(
    repo: String, ref: String?, path: String, stateDir: String, options: LoadOptions = LoadOptions(),
    timeouts: GitTimeouts = GitTimeouts(), caFile: String? = nil,
    environment: [String: String] = ProcessInfo.processInfo.environment
  ) -> GitOutcome {
    var auth = GitAuth.none
    if let t = environment["YTEMPIRE_GIT_TOKEN"], !t.isEmpty { auth = .token(t) }
    if let k = environment["YTEMPIRE_GIT_SSH_KEY"], !k.isEmpty {
      auth = .sshKey(privateKey: k, knownHosts: (environment["HOME"] ?? NSHomeDirectory()) + "/.ssh/known_hosts")
    }
    let display = Redaction.scrub(repo, secrets: auth.secrets, urls: true)
    func failure(_ message: String) -> GitOutcome {
      let d = Diagnostic(.error, .fileUnreadable, message, at: .init(file: display, line: 1, column: 1))
      return GitOutcome(report: ValidationReport(resources: [], diagnostics: [d], fileCount: 0), revision: nil, summaryName: display)
    }
    do throws(GitError) {
      let source = try GitSource(
        GitSourceConfig(
          url: repo, ref: ref, path: path, stateDir: stateDir, auth: auth,
          timeouts: timeouts, caFile: caFile))
      let sync = source.syncBlocking()
      if let e = sync.error { return failure("cannot read the repository: \(e.message) [\(e.code.rawValue)]") }
      guard let revision = sync.revision else { return failure("cannot read the repository") }
      let tree = try source.manifestsBlocking(at: revision)
      let report = tree.validate(options: options, emptyName: path == "." ? display : path)
      return GitOutcome(report: report, revision: revision, summaryName: "\(source.mirror.displayURL) \(revision)")
    } catch {
      return failure("cannot read the repository: \(error.message) [\(error.code.rawValue)]")
    }
  }

  public static func summary(_ r: ValidationReport, path: String) -> String {
    let kinds = r.countsByKind.map { "\($0.1) \($0.0.rawValue)" }.joined(separator: ", ")
    let count = r.resources.count
    var s = "\(TextEscape.escape(path)): \(count) resource\(count == 1 ? "" : "s") in \(r.fileCount) file\(r.fileCount == 1 ? "" : "s")"
    if !kinds.isEmpty { s += " (\(kinds))" }
    if r.isValid {
      s += ": valid"
      if r.warningCount > 0 { s += ", \(r.warningCount) warning\(r.warningCount == 1 ? "" : "s")" }
    } else {
      s += ": \(r.errorCount) error\(r.errorCount == 1 ? "" : "s")"
      if r.warningCount > 0 { s += ", \(r.warningCount) warning\(r.warningCount == 1 ? "" : "s")" }
    }
    return s
  }

  /// The documented, stable JSON shape (docs/cli.md).
  public static func json(_ r: ValidationReport) -> String {
    struct Out: Encodable {
      var version = 1
      var valid: Bool
      var files: Int
      var resources: [String: Int]
      var errors: Int
      var warnings: Int
      /// Diagnostics counted in errors/warnings but not listed (the per-file and per-run caps).
      var omitted: Int
      var diagnostics: [D]
    }
    struct D: Encodable {
      var file: String, line: Int, column: Int, severity: String, code: String, message: String
      var notes: [Diagnostic.Note]?
    }
    var kinds: [String: Int] = [:]
    for (k, n) in r.countsByKind { kinds[k.rawValue] = n }
    let out = Out(
      valid: r.isValid, files: r.fileCount, resources: kinds, errors: r.errorCount, warnings: r.warningCount, omitted: r.omitted,
      diagnostics: r.diagnostics.map {
        D(
          file: $0.file, line: $0.line, column: $0.column, severity: $0.severity.rawValue, code: $0.code,
          message: $0.message, notes: $0.notes.isEmpty ? nil : $0.notes)
      })
    let enc = JSONEncoder()
    enc.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
    return String(decoding: (try? enc.encode(out)) ?? Data(), as: UTF8.self)
  }
}
