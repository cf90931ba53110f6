import ArgumentParser
import DriverKit
import EmpireModel
import Foundation
import Reconciler
import Workspace

enum PlanOutput: String, ExpressibleByArgument, CaseIterable { case text, json, markdown }

/// Options `plan` and `apply` share.
struct ReconcileOptions: ParsableArguments {
  @Option(name: .long, help: "Reconciler configuration (default: ./ytempire.yaml).")
  var config: String?

  @Option(name: .long, help: "Branch, tag or commit to plan instead of the configured ref.")
  var ref: String?

  @Option(name: .long, parsing: .singleValue, help: "Limit to this resource, KIND/NAME (repeatable).")
  var target: [String] = []

  @Option(
    name: .long,
    help:
      "What to observe now: all, changed (default: what changed since it was applied, or was seen longer ago than policy.observeMaxAge), none (stored observations)."
  )
  var refresh: RefreshOption = .changed
}

struct PlanCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "plan",
    abstract: "Show what apply would change and what it would cost in API quota; changes nothing.",
    discussion: """
      Reads the configured source (or the working copy at PATH), observes the real systems within \
      their quotas, and prints one block per resource with + create, ~ update, - delete and field \
      diffs, then the summary line with the quota cost. Exit status: 0, or with --detailed-exitcode \
      0 for no changes, 1 for an error, 2 for changes.
      """
  )

  @Argument(help: "A working copy to plan instead of the configured source.")
  var path: String?

  @OptionGroup var options: ReconcileOptions

  @Option(name: .long, help: "Output format: text, json or markdown.")
  var output: PlanOutput = .text

  @Option(name: .long, help: "Also write the plan as versioned JSON (with a sha256 digest) for `apply PLAN`.")
  var out: String?

  @Flag(name: .customLong("detailed-exitcode"), help: "Exit 2 when the plan has changes.")
  var detailedExitcode = false

  func validate() throws { _ = try parseTargets(options.target) }

  func run() throws {
    let cmd = self
    try runBlocking {
      let ws = try Workspace.open(cmd.options.config, writer: false)
      let loaded = try await ws.loadPrinting(path: cmd.path, ref: cmd.options.ref)
      let engine = try ws.engine(.init(targets: try parseTargets(cmd.options.target), refresh: cmd.options.refresh.mode))
      let plan = try await ws.plan(loaded, engine: engine)
      if let out = cmd.out {
        try writePrivateFile(out, Array(plan.json().utf8))
      }
      switch cmd.output {
      case .text: Terminal.write(PlanRenderer.text(plan, style: .init(color: Terminal.useColor(STDOUT_FILENO))), to: .standardOutput)
      case .json: Terminal.write(plan.json() + "\n", to: .standardOutput)
      case .markdown: Terminal.write(PlanRenderer.markdown(plan), to: .standardOutput)
      }
      if let out = cmd.out, cmd.output == .text {
        Terminal.write("Plan written to \(out); apply it with `ytempire apply \(out)`.\n", to: .standardOutput)
      }
      try failUnobserved(plan)
      if cmd.detailedExitcode && plan.hasChanges { throw ExitCode(2) }
    }
  }
}

/// A plan that could not observe some resource is not a success: each is named, exit 1.
func failUnobserved(_ plan: Plan) throws {
  let failed = plan.unobserved
  guard !failed.isEmpty else { return }
  var err =
    "error: \(failed.count) resource\(failed.count == 1 ? "" : "s") could not be observed, so nothing is known or planned for \(failed.count == 1 ? "it" : "them"):\n"
  for r in failed { err += "  \(r.id): \(TextEscape.escape(r.observationError ?? ""))\n" }
  Terminal.write(err, to: .standardError)
  throw ExitCode(1)
}

/// Writes a file that only its owner may read, replacing a regular file (never a link or device).
func writePrivateFile(_ path: String, _ bytes: [UInt8]) throws {
  var st = stat()
  if lstat(path, &st) == 0 && (st.st_mode & S_IFMT) != S_IFREG {
    throw CLIFailure("\(path) exists and is not a regular file; refusing to replace it")
  }
  let tmp = path + ".tmp-\(getpid())"
  let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o600)
  guard fd >= 0 else { throw CLIFailure("cannot write \(path): \(String(cString: strerror(errno)))") }
  var off = 0
  while off < bytes.count {
    let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    if n <= 0 {
      close(fd)
      unlink(tmp)
      throw CLIFailure("cannot write \(path): \(String(cString: strerror(errno)))")
    }
    off += n
  }
  close(fd)
  guard rename(tmp, path) == 0 else {
    unlink(tmp)
    throw CLIFailure("cannot write \(path): \(String(cString: strerror(errno)))")
  }
}
