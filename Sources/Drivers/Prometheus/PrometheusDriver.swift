// The Prometheus driver (DESIGN A4): each Monitor is one alerting rule in the `ytempire` group
// of the configured rule file; the file is checked with promtool, replaced atomically, Prometheus
// reloaded and `/api/v1/rules` checked, or the old file is restored. docs/drivers/prometheus.md.
import CurlHTTP
import DriverKit
import EmpireModel
import Foundation
import YAMLKit

public struct PrometheusDriverConfig: Sendable {
  /// Base URL of Prometheus (`http://127.0.0.1:9090`).
  public var endpoint: String
  /// The rule file the `ytempire` group lives in (absolute; Prometheus's `rule_files` must name it).
  public var rulesFile: String
  /// promtool: a command looked up on PATH or an absolute path (nil: `promtool`).
  public var promtool: String?
  /// How long `promtool check rules` may run (clamped to 1 s … 1 h).
  public var promtoolTimeout: TimeInterval
  /// Total time allowed for each call to Prometheus (clamped to 1 s … 10 min).
  public var requestTimeout: Duration

  public init(
    endpoint: String, rulesFile: String, promtool: String? = nil,
    promtoolTimeout: TimeInterval = 30, requestTimeout: Duration = .seconds(15)
  ) {
    self.endpoint = endpoint
    self.rulesFile = rulesFile
    self.promtool = promtool
    // Every wait has a deadline: 1 s … 1 h for promtool, 1 s … 10 min per call.
    self.promtoolTimeout = promtoolTimeout.isFinite ? min(max(promtoolTimeout, 1), 3600) : 30
    self.requestTimeout = min(max(requestTimeout, .seconds(1)), .seconds(600))
  }
}

/// Converges Monitors into the `ytempire` group of a Prometheus rule file.
public struct PrometheusDriver: Driver {
  public let name = "prometheus"
  public let kinds: Set<Kind> = [.monitor]
  public let displayName = "Prometheus"
  public let config: PrometheusDriverConfig
  /// Actions of one run rewrite the same file: one at a time.
  let serializer = Serializer()

  /// The service name calls are made (and priced) under.
  public static let service = "prometheus"
  /// What `apply` calls, in order.
  public enum Operation {
    public static let reload = "reload"
    public static let rulesList = "rules.list"
  }
  /// The one key of a Monitor's action: its rule.
  public static let actionKey = "rule"

  public init(config: PrometheusDriverConfig) {
    self.config = config
  }

  var endpoint: String { config.endpoint.hasSuffix("/") ? String(config.endpoint.dropLast()) : config.endpoint }

  // MARK: desired

  public func desired(_ resource: Resource, in index: DesiredIndex) -> JSONValue {
    guard let m = resource.monitor else { return .null }
    return Self.desiredRule(name: resource.name, m)
  }

  /// The rule a Monitor wants, canonical (as `RuleFile.canonical` reads it back).
  static func desiredRule(name: String, _ m: MonitorSpec) -> JSONValue {
    var rule: [String: JSONValue] = ["alert": .string(name), "expr": .string(m.expr)]
    if let f = m.for, f.milliseconds != 0 { rule["for"] = .string(f.description) }
    var labels = m.labels.mapValues(JSONValue.string)
    labels["severity"] = .string(m.severity.rawValue)
    rule["labels"] = .object(labels)
    var annotations: [String: JSONValue] = ["summary": .string(m.summary)]
    if let d = m.description, !d.isEmpty { annotations["description"] = .string(d) }
    if let r = m.runbook, !r.isEmpty { annotations["runbook_url"] = .string(r) }
    rule["annotations"] = .object(annotations)
    return .object(rule)
  }

  // MARK: observe

  /// Observing reads the rule file: no call to Prometheus.
  public func observationCalls(_ targets: [ObserveTarget], pricing: Pricing) -> [PlannedCall] { [] }

  public func observe(_ targets: [ObserveTarget], context: DriverContext) async throws -> [ResourceID: ObservationOutcome] {
    var out: [ResourceID: ObservationOutcome] = [:]
    let file: RuleFile
    do {
      file = try readRuleFile().file
    } catch {
      for t in targets { out[t.id] = .failed("\(error)") }
      return out
    }
    for t in targets {
      out[t.id] = .observed(state: file.rule(t.id.name).map(RuleFile.canonical) ?? .null, external: [:])
    }
    return out
  }

  func readRuleFile() throws(PrometheusError) -> (bytes: [UInt8]?, file: RuleFile) {
    let path = config.rulesFile
    guard path.hasPrefix("/") else {
      throw PrometheusError(.ruleFileUnusable, "integrations.prometheus.rulesFile must be an absolute path, not \(path)")
    }
    guard let bytes = try RuleFileIO.read(path) else { return (nil, .empty) }
    return (bytes, try RuleFile.parse(bytes, display: path))
  }

  // MARK: diff

  public func diff(_ input: DiffInput) -> [Action] {
    // `.none`, never `nil`: JSONValue is ExpressibleByNilLiteral, so `nil` here would be `.some(.null)`.
    let desired: JSONValue? = (input.desired?.isNull ?? true) ? .none : input.desired
    let observed: JSONValue? = input.observed.isNull ? .none : .some(input.observed)
    let calls = [input.pricing.call(Self.service, Operation.reload), input.pricing.call(Self.service, Operation.rulesList)]
    let alert = input.id.name
    func action(_ op: ActionOperation, _ summary: String, _ changes: [FieldChange], _ payload: JSONValue) -> Action {
      Action(
        driver: name, resource: input.id, operation: op, key: Self.actionKey, summary: summary, changes: changes,
        calls: calls, payload: payload)
    }
    switch (desired, observed) {
    case (.none, .none):
      return []
    case (.none, .some(let o)):
      return [action(.delete, "alerting rule \(alert) in group \(RuleFile.groupName)", JSONDiff.changes(o, nil), ["alert": .string(alert)])]
    case (.some(let d), .none):
      return [action(.create, "alerting rule \(alert) in group \(RuleFile.groupName)", JSONDiff.changes(nil, d), ["rule": d])]
    case (.some(let d), .some(let o)):
      if d == o { return [] }
      return [action(.update, "alerting rule \(alert) in group \(RuleFile.groupName)", JSONDiff.changes(o, d), ["rule": d])]
    }
  }

  // MARK: apply

  public func apply(_ action: Action, observed: JSONValue, external: [String: String], context: DriverContext) async throws -> ApplyOutcome
  {
    let alert = action.resource.name
    let rule: JSONValue?
    switch action.operation {
    case .create, .update:
      guard let r = action.payload["rule"], r["alert"]?.string == alert, r["expr"]?.string != nil else {
        throw PrometheusError(.malformedAction, "action \(action.id) carries no rule named \(alert)")
      }
      rule = r
    case .delete:
      guard action.payload["alert"]?.string == alert else {
        throw PrometheusError(.malformedAction, "action \(action.id) names no rule \(alert)")
      }
      rule = nil
    }
    return try await serializer.run {
      try await self.write(alert: alert, rule: rule, context: context)
    }
  }

  /// Read-modify-write of the rule file with one rule changed, checked, reloaded and verified.
  func write(alert: String, rule: JSONValue?, context: DriverContext) async throws -> ApplyOutcome {
    let path = config.rulesFile
    let (oldBytes, old) = try readRuleFile()
    var file = old
    file.setRule(alert, rule.map(RuleFile.yamlRule))
    let newBytes = try file.render()
    // What is written, read back: the state observe will see, and what Prometheus must show.
    let written = try RuleFile.parse(newBytes, display: path)
    let state = written.rule(alert).map(RuleFile.canonical) ?? .null

    let tmp = try RuleFileIO.writeTemporary(beside: path, newBytes)
    do {
      try await check(tmp)
    } catch {
      unlink(tmp)
      throw error
    }
    try RuleFileIO.replace(path, with: tmp)
    do {
      try await reload(context)
      try await verify(written, context)
    } catch let e as PrometheusError {
      let note = await restore(oldBytes, reload: e.reason != .unreachable, context: context)
      throw PrometheusError(e.reason, e.message + "; " + note, status: e.status)
    } catch {
      // Not a call failure (cancellation, an open breaker, the quota ledger): the file
      // goes back all the same, and the error is passed on unchanged for the engine.
      _ = await restore(oldBytes, reload: false, context: context)
      throw error
    }
    return ApplyOutcome(observed: state)
  }

  /// Puts the previous file back (or removes the file when there was none) and reloads it.
  func restore(_ oldBytes: [UInt8]?, reload again: Bool, context: DriverContext) async -> String {
    let path = config.rulesFile
    do {
      if let oldBytes { try RuleFileIO.write(path, oldBytes) } else { try RuleFileIO.remove(path) }
    } catch {
      return "restoring the previous rule file failed too: \(error.message)"
    }
    let what = oldBytes == nil ? "the new rule file was removed (there was none before)" : "the previous rule file was restored"
    guard again else { return what }
    do {
      try await reload(context)
      return what + " and Prometheus reloaded it"
    } catch let e as PrometheusError {
      return what + ", but reloading it failed: \(e.message)"
    } catch {
      return what + ", but reloading it failed: \(error)"
    }
  }

  // MARK: promtool

  func check(_ tmp: String) async throws {
    let tool = config.promtool.flatMap { $0.isEmpty ? nil : $0 } ?? "promtool"
    let out = try await Promtool.run([tool, "check", "rules", tmp], timeout: config.promtoolTimeout)
    if out.timedOut {
      throw PrometheusError(
        .promtoolUnavailable, "\(tool) check rules did not finish within \(Int(config.promtoolTimeout))s; the rule file was not replaced")
    }
    guard out.status == 0 else {
      var text = out.output.replacingOccurrences(of: tmp, with: config.rulesFile)
      text = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        .filter { !$0.isEmpty && !$0.hasPrefix("Checking ") }.joined(separator: "; ")
      if text.count > 1500 { text = String(text.prefix(1500)) + "…" }
      throw PrometheusError(
        .promtoolRejected,
        "promtool check rules refused the new rule file, which did not replace the old one: \(text.isEmpty ? "exit status \(out.status)" : text)"
      )
    }
  }

  // MARK: HTTP

  /// One call to Prometheus; a non-2xx answer or a failed call becomes a `PrometheusError`;
  /// what is not a call failure (cancellation, an open breaker) is passed on unchanged.
  func send(
    _ method: String, _ path: String, operation: String, failing reason: PrometheusError.Reason,
    context: DriverContext
  ) async throws -> HTTPResponse {
    let call = context.pricing.call(Self.service, operation)
    let request = HTTPRequest(
      method: method, url: endpoint + path, headers: ["Accept": "application/json"],
      timeout: config.requestTimeout, maxResponseBytes: 16 << 20)
    let what = "\(method) \(path)"
    let response: HTTPResponse
    do {
      response = try await context.client(Self.service).send(request, call: call)
    } catch let e where CallFailure(e) != nil {
      let f = CallFailure(e)!
      guard let status = f.status else {
        throw PrometheusError(
          .unreachable, "Prometheus at \(endpoint) is unreachable (\(what)): \(f.reason.map { "\($0): " } ?? "")\(f.message)")
      }
      throw PrometheusError(reason, "\(what) failed with HTTP \(status): \(Self.hint(status, path: path, f.message))", status: status)
    }
    guard (200..<300).contains(response.status) else {
      throw PrometheusError(
        reason, "\(what) failed with HTTP \(response.status): \(Self.hint(response.status, path: path, Self.errorText(response.body)))",
        status: response.status)
    }
    return response
  }

  /// Prometheus's error text: its API's `{"status":"error","errorType":…,"error":…}`, or the plain body.
  static func errorText(_ body: [UInt8]) -> String {
    if let v = try? JSONValue.parse(body), v["status"]?.string == "error" {
      let type = v["errorType"]?.string.map { "\($0): " } ?? ""
      return type + (v["error"]?.string ?? "")
    }
    var s = String(decoding: body.prefix(2000), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    if s.count > 500 { s = String(s.prefix(500)) + "…" }
    return s
  }

  static func hint(_ status: Int, path: String, _ text: String) -> String {
    var s = text.isEmpty ? "no message" : text
    if path == "/-/reload" && (status == 403 || text.contains("Lifecycle API")) {
      s += " (Prometheus must run with --web.enable-lifecycle for ytempire to reload it)"
    }
    return s
  }

  func reload(_ context: DriverContext) async throws {
    _ = try await send("POST", "/-/reload", operation: Operation.reload, failing: .reloadFailed, context: context)
  }

  /// After the reload, `/api/v1/rules` must show the ytempire group of this file with every
  /// alerting rule as written (labels, annotations, `for`), none with health `err` or a
  /// `lastError`. Rules not yet evaluated show health `unknown`: accepted (see the docs).
  func verify(_ written: RuleFile, _ context: DriverContext) async throws {
    let r = try await send("GET", "/api/v1/rules", operation: Operation.rulesList, failing: .verificationFailed, context: context)
    guard let json = try? JSONValue.parse(r.body), json["status"]?.string == "success", let groups = json["data"]?["groups"]?.array else {
      throw PrometheusError(.malformedResponse, "GET /api/v1/rules did not answer Prometheus's JSON", status: r.status)
    }
    let path = config.rulesFile
    let resolved = (path as NSString).resolvingSymlinksInPath
    let mine = groups.filter { g in
      g["name"]?.string == RuleFile.groupName && (g["file"]?.string == path || g["file"]?.string == resolved)
    }
    let expected = written.ownedRules.filter { RuleFile.alertName($0) != nil }.map(RuleFile.canonical)
    if expected.isEmpty {
      if !mine.isEmpty {
        throw PrometheusError(
          .verificationFailed, "after the reload Prometheus still shows group \(RuleFile.groupName) of \(path), which no longer exists")
      }
      return
    }
    guard let group = mine.first else {
      throw PrometheusError(
        .verificationFailed,
        "after the reload Prometheus shows no group \(RuleFile.groupName) from \(path): is the file named in rule_files of Prometheus's configuration?"
      )
    }
    let loaded = group["rules"]?.array ?? []
    var problems: [String] = []
    for want in expected {
      let alert = want["alert"]?.string ?? ""
      guard let got = loaded.first(where: { $0["name"]?.string == alert && $0["type"]?.string == "alerting" }) else {
        problems.append("rule \(alert) is not loaded")
        continue
      }
      let health = got["health"]?.string ?? "unknown"
      let lastError = got["lastError"]?.string ?? ""
      if health == "err" || !lastError.isEmpty {
        problems.append("rule \(alert) has health \(health)\(lastError.isEmpty ? "" : ": \(lastError)")")
        continue
      }
      let wantFor = want["for"]?.string.flatMap(PromDuration.parse).map { Double($0.milliseconds) / 1000 } ?? 0
      if let d = got["duration"]?.double, abs(d - wantFor) > 0.0005 {
        problems.append("rule \(alert) is loaded with for \(d)s, not \(wantFor)s as written")
      }
      for field in ["labels", "annotations"] {
        let w = want[field]?.object ?? [:]
        let g = got[field]?.object ?? [:]
        if w != g { problems.append("rule \(alert) is loaded with other \(field) than written") }
      }
    }
    if !problems.isEmpty {
      throw PrometheusError(
        .verificationFailed, "after the reload Prometheus does not show the rules as written: " + problems.joined(separator: "; "))
    }
  }
}

/// Runs bodies one at a time, in arrival order, across suspension points (an actor alone would
/// interleave them at every `await`).
final class Serializer: Sendable {
  private let state = SerializerState()

  func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
    await state.acquire()
    do {
      let v = try await body()
      await state.release()
      return v
    } catch {
      await state.release()
      throw error
    }
  }
}

actor SerializerState {
  private var busy = false
  private var waiters: [CheckedContinuation<Void, Never>] = []

  func acquire() async {
    if !busy {
      busy = true
      return
    }
    await withCheckedContinuation { waiters.append($0) }
  }

  func release() {
    if waiters.isEmpty { busy = false } else { waiters.removeFirst().resume() }
  }
}
