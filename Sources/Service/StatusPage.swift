import Foundation
import Reconciler

/// What the status page shows: one row per resource, quota gauges, the revision, the last error.
public struct StatusSnapshot: Sendable {
  public var resources: [ResourceStatusRecord]
  public var quotas: [StatusBook.QuotaState]
  public var revision: String?
  public var lastSourceError: String?
  public var lastReconcile: Date?
  public var lastResult: String?
  public var driftNote: String?
  /// `leader`, or `standby (leader: …)` when several instances share the state store.
  public var role: String? = nil
  public init(
    resources: [ResourceStatusRecord], quotas: [StatusBook.QuotaState], revision: String?, lastSourceError: String?,
    lastReconcile: Date?, lastResult: String?, driftNote: String? = nil
  ) {
    self.resources = resources
    self.quotas = quotas
    self.revision = revision
    self.lastSourceError = lastSourceError
    self.lastReconcile = lastReconcile
    self.lastResult = lastResult
    self.driftNote = driftNote
  }
}

/// Server-rendered HTML, no JavaScript: it refreshes itself with a meta refresh. Every value
/// from outside is escaped.
public enum StatusPage {
  public static let refreshSeconds = 15

  public static func escape(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.utf8.count)
    for ch in s.unicodeScalars {
      switch ch {
      case "&": out += "&amp;"
      case "<": out += "&lt;"
      case ">": out += "&gt;"
      case "\"": out += "&quot;"
      case "'": out += "&#39;"
      default:
        if ch.value < 0x20 && ch != "\n" && ch != "\t" || ch.value == 0x7F {
          out += "&#\(ch.value);"
        } else {
          out.unicodeScalars.append(ch)
        }
      }
    }
    return out
  }

  static func iso(_ d: Date) -> String { PlanRenderer.iso(d) }

  public static func render(_ s: StatusSnapshot, now: Date = Date()) -> String {
    let e = escape
    var h = """
      <!DOCTYPE html>
      <html lang="en"><head><meta charset="utf-8">
      <meta http-equiv="refresh" content="\(refreshSeconds)">
      <meta name="viewport" content="width=device-width, initial-scale=1">
      <title>ytempire status</title>
      <style>
      body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
      table{border-collapse:collapse;width:100%;font-size:.9rem}
      th,td{border-bottom:1px solid #ddd;padding:.35rem .5rem;text-align:left;vertical-align:top}
      .good{color:#176317}.bad{color:#a31515}.unknown{color:#8a6d00}
      .cond{display:inline-block;margin:0 .4rem .2rem 0;padding:0 .3rem;border:1px solid #ccc;border-radius:3px}
      meter{width:12rem}
      code{font-size:.85rem}
      .error{color:#a31515}
      </style></head><body>
      <h1>ytempire</h1>

      """
    h += "<p id=\"revision\">Revision in use: <code>\(e(s.revision ?? "none yet"))</code>"
    if let t = s.lastReconcile { h += " — last reconcile \(e(iso(t)))" + (s.lastResult.map { ": \(e($0))" } ?? "") }
    h += "</p>\n"
    if let err = s.lastSourceError { h += "<p id=\"source-error\" class=\"error\">Last source error: \(e(err))</p>\n" }
    if let d = s.driftNote { h += "<p id=\"drift\">\(e(d))</p>\n" }
    if let role = s.role { h += "<p id=\"role\">This instance: \(e(role))</p>\n" }

    h += "<h2>Quotas</h2>\n<table id=\"quotas\"><tr><th>rate limit</th><th>service</th><th>used</th><th>resets</th></tr>\n"
    for q in s.quotas {
      h += "<tr><td>\(e(q.rateLimit))</td><td>\(e(q.service))</td>"
      h +=
        "<td><meter min=\"0\" max=\"\(max(q.units, 1))\" value=\"\(min(max(q.spent, 0), max(q.units, 1)))\"></meter> \(q.spent) / \(q.units) units</td>"
      h += "<td>\(e(iso(q.resetsAt)))</td></tr>\n"
    }
    h += "</table>\n"

    h += "<h2>Resources (\(s.resources.count))</h2>\n"
    h += "<table id=\"resources\"><tr><th>resource</th><th>conditions</th><th>last actions</th><th>external ids</th></tr>\n"
    for r in s.resources.sorted(by: { $0.id < $1.id }) {
      let id = r.id.description
      h += "<tr class=\"resource\" data-resource=\"\(e(id))\"><td><code>\(e(id))</code></td><td>"
      for c in r.conditions {
        // Ready=True is good; for the others (Drifted, Stalled, Deferred, RotationDue, …) True is bad.
        let tone = c.status == .unknown ? "unknown" : ((c.type == .ready) == (c.status == .true) ? "good" : "bad")
        h +=
          "<span class=\"cond \(tone)\" data-type=\"\(e(c.type.rawValue))\" data-status=\"\(e(c.status.rawValue))\" title=\"\(e(c.message))\">"
        h += "\(e(c.type.rawValue))=\(e(c.status.rawValue)) <small>\(e(c.reason.rawValue))</small></span>"
      }
      h += "</td><td>"
      for a in r.lastActions.prefix(5) {
        h += "<div>\(e(a.operation)) <code>\(e(a.call))</code> \(e(a.result))"
        if !a.fields.isEmpty { h += " <small>\(e(a.fields.prefix(6).joined(separator: ", ")))\(a.fields.count > 6 ? "…" : "")</small>" }
        h += "</div>"
      }
      h += "</td><td>"
      for (k, v) in r.external.sorted(by: { $0.key < $1.key }) { h += "<div><small>\(e(k))</small> <code>\(e(v))</code></div>" }
      h += "</td></tr>\n"
    }
    h += "</table>\n<p><small>Rendered \(e(iso(now))); refreshes every \(refreshSeconds) s.</small></p>\n</body></html>\n"
    return h
  }
}
