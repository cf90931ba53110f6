import Basics
import CurlHTTP
import DriverKit
import EmpireModel
import Foundation
import Notifications
import PlanFile
import Reconciler
import Resilience

/// The last state sent per sink and condition, in the state store (`notifications.sent`), so
/// `apply` run from cron announces a condition once, as `serve` does.
struct StoreNotificationMemory: NotificationMemory {
  let store: any StateStore
  static let key = "notifications.sent"

  func load() -> [String: String] {
    guard let text = try? store.meta(Self.key), let m = try? JSONDecoder().decode([String: String].self, from: Data(text.utf8)) else {
      return [:]
    }
    return m
  }

  func save(_ sent: [String: String]) {
    let encoder = JSONEncoder()
    encoder.outputFormatting = .sortedKeys
    guard let data = try? encoder.encode(sent) else { return }
    try? store.setMeta(Self.key, String(decoding: data, as: UTF8.self))
  }
}

extension Workspace {
  /// The notifier of a configuration: sinks' credentials are read on their first delivery.
  static func makeNotifier(
    config: ReconcilerConfig, store: any StateStore, resolver: SecretResolver, transport: any HTTPTransport,
    clock: any ResilienceClock, log: @escaping @Sendable (String) -> Void
  ) -> Notifier {
    Notifier(
      sinks: config.notifications,
      resolve: { sink in try Self.resolve(sink, resolver: resolver) },
      transport: transport, clock: clock, memory: StoreNotificationMemory(store: store),
      statusPage: config.serve.externalURL, log: log)
  }

  static func resolve(_ sink: NotificationSink, resolver: SecretResolver) throws -> ResolvedSink {
    func read(_ r: SecretRef) throws -> String {
      let v = try resolver.resolve(r)
      Redaction.registerSecret(v)
      return v
    }
    var secrets: [String] = []
    var url = sink.endpoint ?? ""
    if let r = sink.secretURL {
      url = try read(r).trimmingCharacters(in: .whitespacesAndNewlines)
      secrets.append(url)
      // The secret holds a URL: an https one (or http to loopback, for tests and the sandbox).
      guard let c = URLComponents(string: url), let scheme = c.scheme?.lowercased(), let host = c.host,
        scheme == "https" || (scheme == "http" && HostPort.isLoopback(host))
      else {
        throw SinkSecretInvalid(path: r.path, why: "is not an https URL")
      }
    }
    var key: [UInt8]?
    if let r = sink.secret ?? sink.token {
      let v = try read(r)
      secrets.append(v)
      key = Array(v.utf8)
    }
    return ResolvedSink(config: sink, url: url, key: key, secrets: secrets)
  }

  /// The longest any sink may take for one delivery, plus a second: what `apply` waits at exit.
  public var notificationGrace: Duration {
    (config.notifications.map(\.timeout.swiftDuration).max() ?? .zero) + .seconds(1)
  }

  /// Waits for queued deliveries, at most `notificationGrace` (`apply` before it exits).
  public func flushNotifications() async {
    guard !config.notifications.isEmpty else { return }
    _ = await notifier.flush(within: notificationGrace)
  }

  // MARK: events of a run

  var actorName: String { "\(AuditActor.Role.apply.rawValue)@\(hostName)" }

  /// A revision failed to load (validation errors, a refused commit): `stalled`, once per failure.
  public func reportStalled(_ error: WorkspaceError, actor: AuditActor.Role) {
    guard !config.notifications.isEmpty else { return }
    let lines =
      [error.message] + error.diagnostics.prefix(20).map { "\($0.file):\($0.line):\($0.column): \($0.severity.rawValue): \($0.message)" }
    let text = lines.joined(separator: "\n")
    notifier.post(
      NotificationEvent(
        event: .stalled, time: clock.wallNow, revision: nil, commit: nil, summary: Redaction.scrub(text, limit: 1500),
        state: sha256Hex(Array(text.utf8)), actor: "\(actor.rawValue)@\(hostName)"))
  }

  /// A revision loaded: whatever stalled before holds no more.
  public func reportLoaded() {
    guard !config.notifications.isEmpty else { return }
    notifier.clear(NotificationSink.Event.stalled.rawValue)
  }

  /// Before an apply: the commit status `pending` when there is work.
  func reportApplying(_ plan: Plan, loaded: LoadedRevision) {
    guard !config.notifications.isEmpty, let commit = loaded.commit?.commit, !plan.runnable.isEmpty else { return }
    let n = plan.runnable.count
    notifier.status(
      CommitStatus(
        commit: commit, state: .pending, description: "applying \(n) change\(n == 1 ? "" : "s")",
        targetURL: config.serve.externalURL))
  }

  /// After an apply: applied, failed, deferred, drifted, rotationDue and quotaLow events, and
  /// the commit status. Each is a transition: a condition that holds is not sent again.
  func reportApplied(_ plan: Plan, report: ApplyReport, loaded: LoadedRevision, actor: AuditActor.Role) {
    guard !config.notifications.isEmpty else { return }
    let now = clock.wallNow
    let who = "\(actor.rawValue)@\(hostName)"
    let commit = loaded.commit?.commit
    func subject(_ id: ResourceID, _ message: String?) -> NotificationEvent.Subject {
      .init(kind: id.kind.rawValue, name: id.name, message: message)
    }
    func fingerprint(_ parts: [String]) -> String {
      sha256Hex(Array((["\(loaded.revision)"] + parts.sorted()).joined(separator: "\n").utf8))
    }

    let failed = report.outcomes.filter { $0.result == .failed }
    let ok = report.outcomes.filter { $0.result == .ok }
    let deferred = report.outcomes.filter { $0.result == .deferred }
    let units = report.outcomes.reduce(0) { $0 &+ $1.units }

    if !failed.isEmpty {
      let subjects = failed.map { subject($0.action.resource, "\($0.action.operation.rawValue): \($0.message ?? "failed")") }
      notifier.post(
        NotificationEvent(
          event: .failed, time: now, revision: loaded.revision, commit: commit,
          summary: "\(failed.count) of \(report.outcomes.count) action(s) failed at \(loaded.revision)", resources: subjects,
          state: fingerprint(failed.map { "\($0.action.id) \($0.message ?? "")" }), actor: who))
    } else {
      notifier.clear(NotificationSink.Event.failed.rawValue)
    }
    if !ok.isEmpty && failed.isEmpty {
      let subjects = ok.map { subject($0.action.resource, "\($0.action.operation.rawValue) \($0.action.summary)") }
      notifier.post(
        NotificationEvent(
          event: .applied, time: now, revision: loaded.revision, commit: commit,
          summary: "\(ok.count) change(s) applied at \(loaded.revision), \(units) quota unit(s) spent", resources: subjects,
          state: fingerprint(ok.map(\.action.id) + [plan.digest]), actor: who))
    }
    if !deferred.isEmpty {
      let subjects = deferred.map { o in
        subject(o.action.resource, o.deferral.map { d in d.message + (d.eta.map { " (until \(Self.iso($0)))" } ?? "") } ?? o.message)
      }
      notifier.post(
        NotificationEvent(
          event: .deferred, time: now, revision: loaded.revision, commit: commit,
          summary: "\(deferred.count) action(s) deferred at \(loaded.revision)", resources: subjects,
          state: fingerprint(deferred.map(\.action.id)), actor: who))
    } else {
      notifier.clear(NotificationSink.Event.deferred.rawValue)
    }
    let drifted = plan.resources.filter { !$0.driftedFields.isEmpty }
    if !drifted.isEmpty {
      let subjects = drifted.map {
        subject($0.id, "\($0.driftReportOnly ? "reported" : "corrected"): " + $0.driftedFields.joined(separator: ", "))
      }
      notifier.post(
        NotificationEvent(
          event: .drifted, time: now, revision: loaded.revision, commit: commit,
          summary: "\(drifted.count) resource(s) drifted from \(loaded.revision)", resources: subjects,
          state: sha256Hex(
            Array(drifted.map { "\($0.id) \($0.driftedFields.joined(separator: ","))" }.sorted().joined(separator: "\n").utf8)),
          actor: who))
    } else {
      notifier.clear(NotificationSink.Event.drifted.rawValue)
    }
    let due = plan.resources.flatMap { r in r.findings.filter { $0.condition.rawValue == "RotationDue" }.map { (r.id, $0) } }
    if !due.isEmpty {
      notifier.post(
        NotificationEvent(
          event: .rotationDue, time: now, revision: loaded.revision, commit: commit,
          summary: "\(due.count) key(s) due for rotation", resources: due.map { subject($0.0, $0.1.message) },
          state: sha256Hex(Array(due.map { "\($0.0) \($0.1.reason.rawValue)" }.sorted().joined(separator: "\n").utf8)), actor: who))
    } else {
      notifier.clear(NotificationSink.Event.rotationDue.rawValue)
    }
    if let quotas = try? StatusBook.quotas(desired: loaded.resources, store: store, clock: clock) {
      for q in quotas where q.units > 0 && q.available * 10 < q.units {
        notifier.post(
          NotificationEvent(
            event: .quotaLow, time: now, revision: loaded.revision, commit: commit,
            summary: "\(q.service) quota \(q.rateLimit): \(q.available) of \(q.units) units left until \(Self.iso(q.resetsAt))",
            resources: [.init(kind: Kind.rateLimit.rawValue, name: q.rateLimit)],
            condition: "quotaLow/\(q.rateLimit)", state: Self.iso(q.resetsAt), actor: who))
      }
    }
    if let commit {
      let description: String
      if !failed.isEmpty {
        description = "\(failed.count) failed, \(ok.count) applied, \(deferred.count) deferred"
      } else if ok.isEmpty && deferred.isEmpty {
        description = "in sync: nothing to change"
      } else {
        description = "\(ok.count) applied" + (deferred.isEmpty ? "" : ", \(deferred.count) deferred to a later quota window")
      }
      notifier.status(
        CommitStatus(
          commit: commit, state: failed.isEmpty ? .success : .failure, description: description, targetURL: config.serve.externalURL))
    }
  }

  static func iso(_ d: Date) -> String { PlanRenderer.iso(d) }
}

/// A sink's secret that does not hold what the sink needs; the value is never shown.
struct SinkSecretInvalid: Error, CustomStringConvertible {
  var path: String
  var why: String
  var description: String { "\(path) \(why)" }
}

extension Workspace {
  /// Plans a pull request's head (`ref`: `refs/pull/N/head`) from stored observations only —
  /// nothing is observed, so nothing is spent, and nothing is ever applied — and posts the
  /// inert markdown plan as the pull request's one ytempire comment, with `ytempire/plan` on
  /// its head commit. A head from a fork is planned the same way. Returns a line for the log.
  public func planPullRequest(
    forge: PullRequestPlan.Forge, number: Int, head: String, ref: String, fromFork: Bool
  ) async -> String {
    guard config.notifications.contains(where: { $0.type.rawValue == forge.rawValue }) else {
      return "pull request \(number) not planned: no \(forge.rawValue) sink in notifications"
    }
    let fork = fromFork ? "\n*This pull request comes from a fork: it is planned, and never applied.*\n" : ""
    let loaded: LoadedRevision
    do {
      loaded = try await load(ref: ref)
    } catch {
      var md =
        "### ytempire plan for \(InertMarkdown.code(ref))\n\n**This revision cannot be planned:** \(InertMarkdown.code(error.message))\n"
      for d in error.diagnostics.prefix(50) {
        md += "- \(InertMarkdown.code("\(d.file):\(d.line):\(d.column): \(d.severity.rawValue): \(d.message)"))\n"
      }
      if error.diagnostics.count > 50 { md += "- … and \(error.diagnostics.count - 50) more\n" }
      notifier.pullRequestPlan(
        PullRequestPlan(
          forge: forge, number: number, commit: head, markdown: md + fork, state: .failure, description: "the revision does not validate"))
      return "pull request \(number): the revision does not validate (\(error.message))"
    }
    let commit = loaded.commit?.commit ?? head
    do {
      let engine = try engine(.init(refresh: .stored, actor: .serve))
      let plan = try await self.plan(loaded, engine: engine)
      let summary = PlanRenderer.summaryLine(plan)
      notifier.pullRequestPlan(
        PullRequestPlan(
          forge: forge, number: number, commit: commit, markdown: PlanRenderer.markdown(plan) + fork,
          state: plan.safety.isEmpty ? .success : .failure, description: String(summary.prefix(140))))
      return "pull request \(number) planned at \(commit.prefix(12)): \(summary)"
    } catch {
      let md = "### ytempire plan for \(InertMarkdown.code(loaded.revision))\n\n**Planning failed:** \(InertMarkdown.code("\(error)"))\n"
      notifier.pullRequestPlan(
        PullRequestPlan(forge: forge, number: number, commit: commit, markdown: md + fork, state: .error, description: "planning failed"))
      return "pull request \(number): planning failed (\(error))"
    }
  }
}
