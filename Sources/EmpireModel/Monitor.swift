import YAMLKit

public struct MonitorSpec: Sendable {
  public enum Severity: String, Sendable, CaseIterable { case info, warning, critical }
  public var expr: String
  public var `for`: ModelDuration?
  public var severity: Severity
  public var summary: String
  public var description: String?
  public var runbook: String?
  public var labels: [String: String]
}

extension NodeDecoder {
  func monitorSpec(_ node: YAMLNode, _ path: String) -> MonitorSpec? {
    guard let f = mapping(node, path, known: ["expr", "for", "severity", "summary", "description", "runbook", "labels"]) else { return nil }
    requireFields(f, ["expr", "severity", "summary"])
    var expr: String?
    if let n = f.value("expr"), let s = string(n, f.sub("expr")) {
      if let problem = PromQLCheck.problem(s) {
        diags.error(.invalidValue, "\(f.sub("expr")) is not a valid PromQL expression: \(problem)", at: n.mark)
      } else {
        expr = s
      }
    }
    let forDuration = duration(f, "for")
    let severity = enumeration(f, "severity", MonitorSpec.Severity.self)
    let summary = string(f, "summary", maxLength: 500, minLength: 1)
    let description = string(f, "description", maxLength: 4000)
    let runbook = url(f, "runbook")
    let labels =
      stringMap(
        f, "labels",
        keyCheck: { k in
          // Prometheus label names: [a-zA-Z_][a-zA-Z0-9_]*; "severity" is set from the field.
          guard let c = k.first, c.isASCII, c.isLetter || c == "_",
            k.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") })
          else {
            return "is not a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*)"
          }
          return k == "severity" || k == "alertname" ? "is set by ytempire; use the severity field" : nil
        }) ?? [:]
    guard let expr, let severity, let summary else { return nil }
    return MonitorSpec(
      expr: expr, for: forDuration, severity: severity, summary: summary, description: description, runbook: runbook, labels: labels)
  }
}

/// A structural check of PromQL: non-empty, balanced brackets outside string literals,
/// terminated strings. Prometheus (promtool) checks the rest when the rule is applied.
enum PromQLCheck {
  static func problem(_ s: String) -> String? {
    if s.allSatisfy(\.isWhitespace) { return "it is empty" }
    var stack: [Character] = []
    var quote: Character?
    var escaped = false
    for ch in s {
      if let q = quote {
        if escaped { escaped = false } else if ch == "\\" { escaped = true } else if ch == q { quote = nil }
        continue
      }
      switch ch {
      case "\"", "'", "`": quote = ch
      case "(", "[", "{": stack.append(ch)
      case ")", "]", "}":
        let open: Character = ch == ")" ? "(" : ch == "]" ? "[" : "{"
        guard stack.last == open else { return "unbalanced '\(ch)'" }
        stack.removeLast()
      default: break
      }
    }
    if quote != nil { return "unterminated string" }
    if let open = stack.last { return "unclosed '\(open)'" }
    return nil
  }
}
