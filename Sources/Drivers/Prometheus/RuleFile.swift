// The Prometheus rule file: parsed with YAMLKit, the `ytempire` group read as canonical rules,
// rewritten with only that group changed (docs/drivers/prometheus.md).
import DriverKit
import EmpireModel
import YAMLKit

/// A parsed rule file: its top-level keys in order, `groups` as written, and the `ytempire` group's rules.
struct RuleFile: Sendable {
  /// The group ytempire owns; every other group is foreign and kept as it is.
  static let groupName = "ytempire"

  /// Top-level keys other than `groups`, in order (Prometheus knows none, but they are kept).
  var otherTopLevel: [(String, YAMLValue)] = []
  /// Every group in file order; the ytempire group as `nil` placeholder at its position.
  var groups: [GroupSlot] = []
  /// The ytempire group's other keys (`interval`, `limit`, …), kept in order.
  var ownedGroupKeys: [(String, YAMLValue)] = []
  /// The ytempire group's rules in file order, as YAML values (recording rules and unknown alerts included).
  var ownedRules: [YAMLValue] = []
  /// Whether the file has a ytempire group at all.
  var hasOwnedGroup = false
  /// Where things are in the text read, so a rewrite can change only the ytempire group's lines.
  var layout: Layout?

  struct Layout: Sendable {
    var source: [UInt8]
    /// The leading whitespace of the first group's `- ` line.
    var itemIndent: [UInt8]
    /// The ytempire group's lines: from its `- ` line up to (not including) `ownedEnd` (1-based; Int.max: to the end).
    var ownedStart: Int?
    var ownedEnd: Int?
    /// Where a new group goes: before this line (Int.max: at the end).
    var appendAt: Int
  }

  enum GroupSlot: Sendable {
    case foreign(YAMLValue)
    case owned
  }

  /// An empty file (missing on disk).
  static let empty = RuleFile()

  // MARK: parse

  /// Parses a rule file's bytes; `display` names the file in messages.
  static func parse(_ bytes: [UInt8], display: String) throws(PrometheusError) -> RuleFile {
    let result = YAMLLoader.load(bytes, file: display)
    if let e = result.errors.first {
      throw PrometheusError(.invalidRuleFile, "rule file \(display) is not valid YAML: \(e)")
    }
    let docs = result.documents.filter { $0.root != nil }
    if docs.count > 1 {
      throw PrometheusError(.invalidRuleFile, "rule file \(display) holds \(docs.count) YAML documents; a Prometheus rule file is one")
    }
    var file = RuleFile()
    guard let root = docs.first?.root, !root.isPlainNull else { return file }
    guard let pairs = root.mappingPairs else {
      throw PrometheusError(.invalidRuleFile, "\(root.mark): rule file \(display) is a \(root.kindName), not a mapping with `groups`")
    }
    for (pi, p) in pairs.enumerated() {
      let key = p.key.scalarText ?? ""
      guard key == "groups" else {
        file.otherTopLevel.append((key, yamlValue(p.value)))
        continue
      }
      if p.value.isPlainNull { continue }
      guard let items = p.value.sequenceItems else {
        throw PrometheusError(.invalidRuleFile, "\(p.value.mark): `groups` in \(display) is a \(p.value.kindName), not a sequence")
      }
      let after = pi + 1 < pairs.count ? pairs[pi + 1].key.mark.line : Int.max
      if let first = items.first {
        file.layout = Layout(source: bytes, itemIndent: leadingBlanks(bytes, line: first.mark.line), appendAt: after)
      }
      for (i, g) in items.enumerated() {
        if g["name"]?.scalarText == groupName && g.isMapping {
          file.layout?.ownedStart = g.mark.line
          file.layout?.ownedEnd = i + 1 < items.count ? items[i + 1].mark.line : after
          if file.hasOwnedGroup {
            throw PrometheusError(.invalidRuleFile, "\(g.mark): rule file \(display) has a second group named \(groupName)")
          }
          file.hasOwnedGroup = true
          file.groups.append(.owned)
          for gp in g.mappingPairs ?? [] {
            let k = gp.key.scalarText ?? ""
            if k == "name" { continue }
            if k == "rules" {
              if gp.value.isPlainNull { continue }
              guard let rules = gp.value.sequenceItems else {
                throw PrometheusError(
                  .invalidRuleFile,
                  "\(gp.value.mark): `rules` of group \(groupName) in \(display) is a \(gp.value.kindName), not a sequence")
              }
              file.ownedRules = rules.map(yamlValue)
            } else {
              file.ownedGroupKeys.append((k, yamlValue(gp.value)))
            }
          }
        } else {
          file.groups.append(.foreign(yamlValue(g)))
        }
      }
    }
    return file
  }

  /// A loaded node as an emitter value with the same content: quoted and tagged scalars stay
  /// strings; plain scalars resolve as YAML 1.2's core schema does (null, booleans, integers,
  /// floats), so `limit: 10` stays a number and `for: 5m` a string.
  static func yamlValue(_ node: YAMLNode) -> YAMLValue {
    switch node.value {
    case .sequence(let items): return .sequence(items.map(yamlValue))
    case .mapping(let pairs): return .mapping(pairs.map { ($0.key.scalarText ?? "", yamlValue($0.value)) })
    case .scalar(let text, let style):
      guard style == .plain, node.tag == nil else { return .string(text) }
      if node.isPlainNull { return .null }
      switch text {
      case "true", "True", "TRUE": return .bool(true)
      case "false", "False", "FALSE": return .bool(false)
      default: break
      }
      if let i = Int(text) { return .int(i) }
      if text.contains(where: { $0.isNumber }), text.allSatisfy({ "0123456789.eE+-".contains($0) }), let d = Double(text) {
        return .double(d)
      }
      return .string(text)
    }
  }

  // MARK: the owned rules

  /// The alerting rule named `alert` in the ytempire group (the first, if a hand edit doubled it).
  func rule(_ alert: String) -> YAMLValue? {
    ownedRules.first { Self.alertName($0) == alert }
  }

  static func alertName(_ rule: YAMLValue) -> String? {
    guard case .mapping(let pairs, _) = rule else { return nil }
    for (k, v) in pairs where k == "alert" { return scalarString(v) }
    return nil
  }

  /// Every alert name in the ytempire group, in file order.
  var ownedAlertNames: [String] { ownedRules.compactMap(Self.alertName) }

  /// Replaces (or inserts, or with nil removes) the rule named `alert`. New rules go after the
  /// existing ones in name order, so the group reads in a stable order.
  mutating func setRule(_ alert: String, _ rule: YAMLValue?) {
    var out: [YAMLValue] = []
    var placed = false
    for r in ownedRules {
      if Self.alertName(r) == alert {
        if !placed, let rule { out.append(rule) }
        placed = true
      } else {
        out.append(r)
      }
    }
    if !placed, let rule {
      let at = out.firstIndex { (Self.alertName($0) ?? "") > alert } ?? out.count
      out.insert(rule, at: at)
    }
    ownedRules = out
  }

  // MARK: render

  /// The file as YAML: the ytempire group at its place (appended when new, left out when
  /// empty), every other line as it was read (`splice`); when that is not possible, the whole
  /// file re-emitted with the foreign groups' values preserved (comments and layout not).
  func render() throws(PrometheusError) -> [UInt8] {
    if let spliced = try? splice(), let back = try? RuleFile.parse(spliced, display: "-"), back.sameContent(self) {
      return spliced
    }
    let values = groupValues()
    let root: YAMLValue = .mapping([("groups", .sequence(values, flow: values.isEmpty))] + otherTopLevel)
    do {
      return try YAMLEmitter.emit(root)
    } catch {
      throw PrometheusError(.invalidRuleFile, "cannot write the rule file: \(error)")
    }
  }

  var ownedGroup: YAMLValue? {
    ownedRules.isEmpty ? nil : .mapping([("name", .string(Self.groupName))] + ownedGroupKeys + [("rules", .sequence(ownedRules))])
  }

  /// The groups as they are to be written, in order.
  func groupValues() -> [YAMLValue] {
    var out: [YAMLValue] = []
    var ownedPlaced = false
    for g in groups {
      switch g {
      case .foreign(let v): out.append(v)
      case .owned:
        if let o = ownedGroup { out.append(o) }
        ownedPlaced = true
      }
    }
    if !ownedPlaced, let o = ownedGroup { out.append(o) }
    return out
  }

  /// Same groups and top-level keys (what Prometheus reads), whatever the layout.
  func sameContent(_ other: RuleFile) -> Bool {
    guard groupValues() == other.groupValues(), otherTopLevel.count == other.otherTopLevel.count else { return false }
    return zip(otherTopLevel, other.otherTopLevel).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
  }

  /// The text read with only the ytempire group's lines replaced (or removed, or the group
  /// appended after the last group), so other groups keep their comments and layout. Nil when
  /// the layout is not the plain block one this handles; `render` then checks the result reads
  /// back as the same content, and writes the whole file otherwise.
  func splice() throws -> [UInt8]? {
    guard let layout, !groupValues().isEmpty else { return nil }
    var lines: [[UInt8]] = []
    var current: [UInt8] = []
    for b in layout.source {
      current.append(b)
      if b == 0x0A {
        lines.append(current)
        current = []
      }
    }
    if !current.isEmpty {
      current.append(0x0A)
      lines.append(current)
    }
    var text: [UInt8] = []
    if let owned = ownedGroup {
      let emitted = try YAMLEmitter.emit(.sequence([owned]))
      var atLineStart = true
      for b in emitted {
        if atLineStart { text += layout.itemIndent }
        text.append(b)
        atLineStart = b == 0x0A
      }
    }
    if let start = layout.ownedStart, let end = layout.ownedEnd {
      guard start >= 1, start <= lines.count, end > start else { return nil }
      let first = lines[start - 1].drop { $0 == 0x20 }
      guard first.first == UInt8(ascii: "-") else { return nil }
      var upper = min(end, lines.count + 1)
      // Blank and comment lines just before the next group belong to it.
      while upper - 1 > start {
        let l = lines[upper - 2].filter { $0 != 0x20 && $0 != 0x09 && $0 != 0x0D && $0 != 0x0A }
        guard l.isEmpty || l.first == UInt8(ascii: "#") else { break }
        upper -= 1
      }
      lines.replaceSubrange((start - 1)..<(upper - 1), with: text.isEmpty ? [] : [text])
    } else if !text.isEmpty {
      let at = min(layout.appendAt, lines.count + 1)
      guard at >= 1 else { return nil }
      lines.insert(text, at: at - 1)
    }
    return lines.flatMap { $0 }
  }

  /// The spaces at the start of a 1-based line.
  static func leadingBlanks(_ bytes: [UInt8], line: Int) -> [UInt8] {
    var n = 1
    var i = 0
    while n < line, i < bytes.count {
      if bytes[i] == 0x0A { n += 1 }
      i += 1
    }
    var out: [UInt8] = []
    while i < bytes.count, bytes[i] == 0x20 {
      out.append(0x20)
      i += 1
    }
    return out
  }

  // MARK: canonical rules

  /// A rule as the driver compares it: alert, expr, for, labels and annotations as strings,
  /// durations in the manifest's spelling (`1h30m`; zero left out), anything else as read.
  static func canonical(_ rule: YAMLValue) -> JSONValue {
    guard case .mapping(let pairs, _) = rule else { return .null }
    var o: [String: JSONValue] = [:]
    for (k, v) in pairs where o[k] == nil {
      switch k {
      case "for", "keep_firing_for":
        guard let s = scalarString(v) else {
          o[k] = json(v)
          continue
        }
        if let d = PromDuration.parse(s) {
          if d.milliseconds != 0 { o[k] = .string(d.description) }
        } else {
          o[k] = .string(s)
        }
      case "labels", "annotations":
        if case .null = v { continue }
        if case .mapping(let m, _) = v {
          var mm: [String: JSONValue] = [:]
          for (lk, lv) in m { mm[lk] = scalarString(lv).map(JSONValue.string) ?? json(lv) }
          if !mm.isEmpty { o[k] = .object(mm) }
        } else {
          o[k] = json(v)
        }
      default:
        o[k] = scalarString(v).map(JSONValue.string) ?? json(v)
      }
    }
    return .object(o)
  }

  /// The YAML value of a canonical rule: keys in Prometheus's documented order.
  static func yamlRule(_ rule: JSONValue) -> YAMLValue {
    let o = rule.object ?? [:]
    let order = ["alert", "expr", "for", "keep_firing_for", "labels", "annotations"]
    var pairs: [(String, YAMLValue)] = []
    for k in order + o.keys.filter({ !order.contains($0) }).sorted() {
      guard let v = o[k] else { continue }
      pairs.append((k, yaml(v)))
    }
    return .mapping(pairs)
  }

  /// A scalar's text as Prometheus reads it into a string field.
  static func scalarString(_ v: YAMLValue) -> String? {
    switch v {
    case .string(let s): s
    case .int(let i): String(i)
    case .bool(let b): b ? "true" : "false"
    case .double(let d): d.rounded() == d && abs(d) < 1e15 ? String(Int64(d)) : "\(d)"
    default: nil
    }
  }

  static func json(_ v: YAMLValue) -> JSONValue {
    switch v {
    case .null: .null
    case .bool(let b): .bool(b)
    case .int(let i): .int(Int64(i))
    case .double(let d): .double(d)
    case .string(let s): .string(s)
    case .sequence(let a, _): .array(a.map(json))
    case .mapping(let p, _):
      .object(Dictionary(p.map { ($0.0, json($0.1)) }, uniquingKeysWith: { a, _ in a }))
    }
  }

  static func yaml(_ v: JSONValue) -> YAMLValue {
    switch v {
    case .null: .null
    case .bool(let b): .bool(b)
    case .int(let i): .int(Int(i))
    case .double(let d): .double(d)
    case .string(let s): .string(s)
    case .array(let a): .sequence(a.map(yaml))
    case .object(let o): .mapping(o.keys.sorted().map { ($0, yaml(o[$0]!)) })
    }
  }
}

/// Prometheus durations: `[0-9]+(y|w|d|h|m|s|ms)` repeated, largest unit first (`1h30m`).
enum PromDuration {
  static let units: [(String, Int64)] = [
    ("y", 365 * 86_400_000), ("w", 7 * 86_400_000), ("d", 86_400_000), ("h", 3_600_000),
    ("m", 60_000), ("s", 1000), ("ms", 1),
  ]

  static func parse(_ text: String) -> ModelDuration? {
    let b = Array(text.utf8)
    guard !b.isEmpty, b.count <= 40 else { return nil }
    if text == "0" { return ModelDuration(milliseconds: 0) }
    var i = 0
    var total: Int64 = 0
    var last = -1
    while i < b.count {
      var v: Int64 = 0
      let start = i
      while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
        let (m, o1) = v.multipliedReportingOverflow(by: 10)
        let (a, o2) = m.addingReportingOverflow(Int64(b[i] - 0x30))
        if o1 || o2 { return nil }
        v = a
        i += 1
      }
      guard i > start, i < b.count else { return nil }
      var unit = -1
      if b[i] == UInt8(ascii: "m"), i + 1 < b.count, b[i + 1] == UInt8(ascii: "s") {
        unit = 6
        i += 2
      } else {
        switch b[i] {
        case UInt8(ascii: "y"): unit = 0
        case UInt8(ascii: "w"): unit = 1
        case UInt8(ascii: "d"): unit = 2
        case UInt8(ascii: "h"): unit = 3
        case UInt8(ascii: "m"): unit = 4
        case UInt8(ascii: "s"): unit = 5
        default: return nil
        }
        i += 1
      }
      guard unit > last else { return nil }
      last = unit
      let (p, o3) = v.multipliedReportingOverflow(by: units[unit].1)
      let (t, o4) = total.addingReportingOverflow(p)
      if o3 || o4 { return nil }
      total = t
    }
    return ModelDuration(milliseconds: total)
  }
}
