import DriverKit
import EmpireModel
import Foundation

/// Human forms of a plan: text for terminals (A6) and markdown for pull-request comments.
public enum PlanRenderer {
  public struct Style: Sendable {
    public var color: Bool
    public init(color: Bool) { self.color = color }
    func paint(_ s: String, _ code: String) -> String { color ? "\u{1B}[\(code)m\(s)\u{1B}[0m" : s }
  }

  /// A value as plans show it: strings quoted, lists and objects as compact JSON, secrets masked.
  public static func show(_ v: JSONValue?, sensitive: Bool = false) -> String {
    if sensitive { return "(sensitive)" }
    guard let v, v != .null else { return "(none)" }
    let s = v.canonicalString
    return TextEscape.escape(s.count > 300 ? String(s.prefix(297)) + "…" : s)
  }

  static func callsText(_ calls: [PlannedCall]) -> String {
    guard !calls.isEmpty else { return "" }
    var byName: [(String, Int, Int)] = []
    for c in calls {
      if let i = byName.firstIndex(where: { $0.0 == c.name }) {
        byName[i].1 += 1
        byName[i].2 &+= c.units
      } else {
        byName.append((c.name, 1, c.units))
      }
    }
    return byName.map { n, count, units in
      (count > 1 ? "\(count)× " : "") + n + (units > 0 ? ", \(units) unit\(units == 1 ? "" : "s")" : "")
    }.joined(separator: "; ")
  }

  static func age(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    if s < 60 { return "\(s)s" }
    if s < 3600 { return "\(s / 60)m" }
    if s < 86400 { return "\(s / 3600)h\(s % 3600 / 60 > 0 ? "\(s % 3600 / 60)m" : "")" }
    return "\(s / 86400)d"
  }

  static func percent(_ part: Int, of whole: Int) -> String {
    guard whole > 0 else { return "0%" }
    let p = Double(part) * 100 / Double(whole)
    return p == p.rounded() ? "\(Int(p))%" : String(format: "%.1f%%", p)
  }

  static func serviceName(_ s: String) -> String {
    switch s {
    case "youtube": "YouTube"
    case "cloudflare": "Cloudflare"
    case "n8n": "n8n"
    case "vault": "Vault"
    default: s
    }
  }

  /// `Plan: 2 to create, 3 to update, 0 to delete, 41 unchanged. YouTube quota: 150 units (1.5% of daily).`
  public static func summaryLine(_ p: Plan) -> String { summaryLine(p, value: { $0 }) }

  /// `value` shows the names the plan took from the repository (markdown: as code).
  static func summaryLine(_ p: Plan, value: (String) -> String) -> String {
    // A resource that could not be observed is not "unchanged": nothing is known of it.
    let unobserved = p.unobserved.count
    let unchanged = p.resources.count { $0.change == .none && $0.observationError == nil }
    var s = "Plan: \(p.count(.create)) to create, \(p.count(.update)) to update, \(p.count(.delete)) to delete, \(unchanged) unchanged"
    s += unobserved > 0 ? ", \(unobserved) not observed." : "."
    for q in p.quotas where q.actionUnits > 0 || q.observationUnits > 0 || q.deferredUnits > 0 || p.quotas.count == 1 {
      let label =
        p.quotas.filter({ $0.service == q.service }).count > 1
        ? "\(value(serviceName(q.service))) quota (\(value(q.rateLimit)))" : "\(value(serviceName(q.service))) quota"
      s += " \(label): \(q.actionUnits) unit\(q.actionUnits == 1 ? "" : "s") (\(percent(q.actionUnits, of: q.units)) of daily)"
      var extra: [String] = []
      if q.observationUnits > 0 { extra.append("observing cost \(q.observationUnits)") }
      if q.deferredUnits > 0 { extra.append("\(q.deferredUnits) deferred") }
      if !extra.isEmpty { s += ", " + extra.joined(separator: ", ") }
      s += "."
    }
    let deferred = p.actions.count { $0.deferred != nil && $0.deferred?.reason != .nonEmpty }
    if deferred > 0 { s += " \(deferred) action\(deferred == 1 ? "" : "s") deferred." }
    let blocked = p.actions.count { $0.deferred?.reason == .nonEmpty }
    if blocked > 0 { s += " \(blocked) delete\(blocked == 1 ? "" : "s") blocked." }
    return s
  }

  public static func observationLine(_ p: Plan) -> String { observationLine(p, value: { $0 }) }

  static func observationLine(_ p: Plan, value: (String) -> String) -> String {
    let o = p.observation
    var s = "Observed \(o.observedNow) resource\(o.observedNow == 1 ? "" : "s") now"
    let units = o.calls.reduce(0) { $0 &+ $1.units }
    if !o.calls.isEmpty { s += " (\(o.calls.count) call\(o.calls.count == 1 ? "" : "s"), \(units) unit\(units == 1 ? "" : "s"))" }
    s += ", \(o.fromStore) from the state store"
    if let a = o.oldestStoredAge { s += " (oldest \(age(a)) old)" }
    s += "; refresh=\(value(o.refresh))."
    return s
  }

  public static func text(_ p: Plan, style: Style = Style(color: false)) -> String {
    var out = "Revision \(p.revision)\n" + observationLine(p) + "\n"
    let byResource = Dictionary(grouping: p.actions, by: { $0.action.resource })
    for r in p.resources.sorted(by: { $0.id < $1.id }) {
      let acts = byResource[r.id] ?? []
      let notes = r.observationError != nil || r.driftReportOnly || !r.pruneHeld.isEmpty || !r.findings.isEmpty
      guard !acts.isEmpty || notes else { continue }
      let head: String
      switch r.change {
      case .create: head = style.paint("+ \(r.id)", "32")
      case .update: head = style.paint("~ \(r.id)", "33")
      case .delete: head = style.paint("- \(r.id)", "31")
      case .none: head = "  \(r.id)"
      }
      out += "\n" + head + (r.driftedFields.isEmpty || r.driftReportOnly ? "" : "  (drift: corrected)") + "\n"
      for pa in acts {
        let a = pa.action
        var line = "    \(a.operation.symbol) \(a.driver): \(a.operation.rawValue) \(TextEscape.escape(a.summary))"
        let calls = callsText(a.calls)
        if !calls.isEmpty { line += "  [\(calls)]" }
        if let d = pa.deferred, d.reason == .nonEmpty {
          line += "  " + style.paint(TextEscape.escape(d.message), "31")
        } else if let d = pa.deferred {
          line += "  " + style.paint("DEFERRED: \(d.message)\(d.eta.map { " (until \(iso($0)))" } ?? "")", "35")
        }
        out += line + "\n"
        for c in a.changes {
          out += "        \(TextEscape.escape(c.path)): \(show(c.old, sensitive: c.sensitive)) → \(show(c.new, sensitive: c.sensitive))\n"
        }
      }
      if r.driftReportOnly {
        out +=
          "    "
          + style.paint(
            "drifted (reported only, ytempire.io/drift: report): \(r.driftedFields.map(TextEscape.escape).joined(separator: ", "))", "35")
          + "\n"
      }
      for h in r.pruneHeld { out += "    kept (pruning is off for it): \(TextEscape.escape(h))\n" }
      for f in r.findings { out += "    " + style.paint("! \(f.condition): \(TextEscape.escape(f.message))", "35") + "\n" }
      if let e = r.observationError { out += "    " + style.paint("not planned: \(TextEscape.escape(e))", "31") + "\n" }
    }
    if !p.unreconciled.isEmpty {
      out += "\nNot reconciled (\(p.unreconciled.count)):\n"
      for u in p.unreconciled { out += "    \(u.id): \(u.integration) — \(TextEscape.escape(u.reason))\n" }
    }
    for v in p.safety { out += "\n" + style.paint("Refused by safety threshold: \(v.message)", "31") + "\n" }
    if !p.hasChanges {
      // What could not be observed is not known to match.
      let unobserved = p.unobserved.count
      out +=
        unobserved == 0
        ? "\nNo changes. The observed state matches the desired state.\n"
        : "\nNothing planned, but \(unobserved) resource\(unobserved == 1 ? "" : "s") could not be observed (see above): whether \(unobserved == 1 ? "it matches" : "they match") the desired state is not known.\n"
    }
    out += "\n" + summaryLine(p) + "\n"
    return out
  }

  /// Markdown for pull-request comments. Every value from the repository or an API is a code
  /// span (``InertMarkdown``): only the plan's own words are markup.
  public static func markdown(_ p: Plan) -> String {
    func code(_ s: String) -> String { InertMarkdown.code(s) }
    func cell(_ s: String) -> String { InertMarkdown.code(s, inTable: true) }
    var out = "### ytempire plan for \(code(p.revision))\n\n"
    out += "**\(summaryLine(p, value: code))**\n\n" + observationLine(p, value: code) + "\n\n"
    if p.hasChanges {
      out += "| | resource | integration | action | calls | fields |\n|---|---|---|---|---|---|\n"
      for pa in p.actions {
        let a = pa.action
        let fields = a.changes.map {
          "\(cell($0.path)): \(cell(show($0.old, sensitive: $0.sensitive))) → \(cell(show($0.new, sensitive: $0.sensitive)))"
        }.joined(separator: "<br>")
        let op = a.operation == .create ? "➕" : a.operation == .update ? "✏️" : "➖"
        var action = "\(a.operation.rawValue) \(cell(a.summary))"
        if let d = pa.deferred { action += " — **\(d.reason == .nonEmpty ? "blocked" : "deferred")**: \(cell(d.message))" }
        let calls = callsText(a.calls)
        out +=
          "| \(op) | \(cell(a.resource.description)) | \(cell(a.driver)) | \(action) | \(calls.isEmpty ? "" : cell(calls)) | \(fields) |\n"
      }
    } else {
      out += p.unobserved.isEmpty ? "No changes.\n" : "Nothing planned, but \(p.unobserved.count) resource(s) could not be observed.\n"
    }
    let drift = p.resources.filter(\.driftReportOnly)
    if !drift.isEmpty {
      out += "\n**Drift reported (not corrected):**\n"
      for r in drift { out += "- \(code(r.id.description)): \(r.driftedFields.map(code).joined(separator: ", "))\n" }
    }
    let found = p.resources.filter { !$0.findings.isEmpty }
    if !found.isEmpty {
      out += "\n**Findings:**\n"
      for r in found { for f in r.findings { out += "- \(code(r.id.description)): \(code(f.condition.rawValue)) \(code(f.message))\n" } }
    }
    if !p.unreconciled.isEmpty {
      out += "\n<details><summary>Not reconciled: \(p.unreconciled.count)</summary>\n\n"
      for u in p.unreconciled { out += "- \(code(u.id.description)): \(code(u.integration)) — \(code(u.reason))\n" }
      out += "\n</details>\n"
    }
    for v in p.safety { out += "\n> ⚠️ Refused by safety threshold: \(code(v.message))\n" }
    out += "\n<sub>plan digest sha256:\(code(p.digest))</sub>\n"
    return out
  }

  /// `2026-12-01T23:59:02Z`: the one timestamp form of plans, status and the status page.
  public static func iso(_ d: Date) -> String { d.formatted(isoFormat) }
  static let isoFormat = Date.ISO8601FormatStyle()
}
