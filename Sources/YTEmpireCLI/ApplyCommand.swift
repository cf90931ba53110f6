import ArgumentParser
import DriverKit
import EmpireModel
import Foundation
import Reconciler
import Workspace

struct ApplyCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "apply",
    abstract: "Converge the real systems to the desired state, within their quotas.",
    discussion: """
      Plans as `plan` does (or takes a plan file written by `plan --out`, refused when its revision \
      or the observed state has moved: "plan is stale"), asks for confirmation on a terminal (only \
      `yes` proceeds; without a terminal --auto-approve is required), applies through the resilience \
      layer with an intent journal, and writes the status files. Actions the quota cannot pay for \
      before its reset are deferred, never attempted.
      """
  )

  @Argument(help: "A working copy to apply instead of the configured source, or a plan file (*.json) written by `plan --out`.")
  var path: String?

  @OptionGroup var options: ReconcileOptions

  @Flag(name: .customLong("auto-approve"), help: "Apply without asking.")
  var autoApprove = false

  @Flag(
    name: .long,
    help:
      "Apply even when the safety thresholds (maxDeletePercent, maxUpdatePercent) are exceeded, outside the sync windows, and delete playlists that still hold videos."
  )
  var force = false

  func validate() throws { _ = try parseTargets(options.target) }

  var planFile: String? {
    guard let path else { return nil }
    var isDir: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && !isDir.boolValue ? path : nil
  }

  func run() throws {
    let cmd = self
    try runBlocking {
      let ws = try Workspace.open(cmd.options.config)
      // Deliveries queued by this run get their sinks' timeout to finish, whatever the outcome.
      do {
        try await cmd.apply(ws)
      } catch let e as WorkspaceError {
        if e.code == .invalidRevision || e.code == .historyRewritten { ws.reportStalled(e, actor: .apply) }
        await ws.flushNotifications()
        throw e
      } catch {
        await ws.flushNotifications()
        throw error
      }
      await ws.flushNotifications()
    }
  }

  func apply(_ ws: Workspace) async throws {
    let cmd = self
    let tty = isatty(STDIN_FILENO) == 1 && isatty(STDOUT_FILENO) == 1
    if !tty && !cmd.autoApprove {
      throw CLIFailure("apply needs confirmation and there is no terminal to ask on; pass --auto-approve")
    }
    let engine = try ws.engine(
      .init(
        targets: try parseTargets(cmd.options.target), refresh: cmd.options.refresh.mode,
        ignoreSyncWindows: cmd.force, deleteNonEmpty: cmd.force))
    let loaded: LoadedRevision
    let plan: Plan
    if let file = cmd.planFile {
      loaded = try await ws.loadPrinting(path: nil, ref: cmd.options.ref)
      plan = try await ws.readPlan(file: file, loaded: loaded, engine: engine)
    } else {
      loaded = try await ws.loadPrinting(path: cmd.path, ref: cmd.options.ref)
      plan = try await ws.plan(loaded, engine: engine)
    }
    ws.reportLoaded()
    let color = Terminal.useColor(STDOUT_FILENO)
    if cmd.planFile != nil {
      // A saved plan was reviewed when it was made (as Terraform does, it is not shown again).
      Terminal.write(
        "Applying the saved plan sha256:\(plan.digest.prefix(12)) for \(plan.revision) (still fresh).\n"
          + PlanRenderer.summaryLine(plan) + "\n", to: .standardOutput)
    } else {
      Terminal.write(PlanRenderer.text(plan, style: .init(color: color)), to: .standardOutput)
    }
    if !plan.safety.isEmpty && !cmd.force {
      throw CLIFailure("apply refused by the safety thresholds (see above); --force applies anyway")
    }
    if plan.runnable.isEmpty {
      let (_, status) = try await ws.converge(plan, loaded: loaded, engine: engine, force: cmd.force)
      Terminal.write("Nothing to apply. " + status + "\n", to: .standardOutput)
      try failUnobserved(plan)
      return
    }
    if tty && !cmd.autoApprove {
      Terminal.write("\nApply these \(plan.runnable.count) actions? Only 'yes' proceeds: ", to: .standardOutput)
      guard readLine()?.trimmingCharacters(in: .whitespaces) == "yes" else {
        Terminal.write("Apply cancelled; nothing changed.\n", to: .standardOutput)
        throw ExitCode(1)
      }
    }
    let progress = Progress(tty: tty && isatty(STDERR_FILENO) == 1)
    let (report, status) = try await ws.converge(plan, loaded: loaded, engine: engine, force: cmd.force, onEvent: { progress.event($0) })
    progress.finish()
    var line = "Apply complete: \(report.succeeded) succeeded, \(report.failed) failed, \(report.deferred) deferred"
    let units = report.outcomes.reduce(0) { $0 &+ $1.units }
    line += "; \(units) quota unit\(units == 1 ? "" : "s") spent."
    if report.interruptedRecovered > 0 { line += " Recovered \(report.interruptedRecovered) action(s) an earlier run left unfinished." }
    Terminal.write(line + "\n" + status + "\n", to: .standardOutput)
    for o in report.outcomes where o.result == .failed {
      Terminal.write(
        "error: \(o.action.resource) \(o.action.driver) \(o.action.operation.rawValue) \(TextEscape.escape(o.action.summary)): \(TextEscape.escape(o.message ?? "failed"))\n",
        to: .standardError)
    }
    try failUnobserved(plan)
    if report.failed > 0 { throw ExitCode(1) }
  }
}

/// Apply progress: a rewritten line on a terminal (done/total, rate, ETA), log lines otherwise.
final class Progress: Sendable {
  let tty: Bool
  let start = Date()
  init(tty: Bool) { self.tty = tty }

  func event(_ e: ApplyEvent) {
    guard case .finished(let o, let done, let total) = e else { return }
    let elapsed = max(0.001, Date().timeIntervalSince(start))
    let rate = Double(done) / elapsed
    let eta = rate > 0 ? Double(total - done) / rate : 0
    let what = "\(o.action.resource) \(o.action.driver) \(o.action.operation.rawValue) \(TextEscape.escape(o.action.summary))"
    if tty {
      Terminal.write(String(format: "\r\u{1B}[K[%d/%d] %.1f/s, ETA %.0fs  %@", done, total, rate, eta, what), to: .standardError)
    } else {
      Terminal.write(
        "[\(done)/\(total)] \(o.result.rawValue) \(what)\(o.message.map { ": " + TextEscape.escape($0) } ?? "")\n", to: .standardError)
    }
  }

  func finish() { if tty { Terminal.write("\n", to: .standardError) } }
}
