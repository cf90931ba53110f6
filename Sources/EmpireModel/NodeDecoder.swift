import YAMLKit

/// Type-directed decoding of a YAML node tree into the resource model.
///
/// Scalars are interpreted by the type the field expects (YAML 1.2 core schema):
/// a string field takes any non-null scalar verbatim (`country: NO` is "NO"), a number
/// field takes only a plain number (`"0.4"` is a string and rejected), a boolean field
/// takes only `true`/`false`, and YAML 1.1 booleans (`yes`, `off`, …) are reported as such.
/// Every problem is recorded with its location; decoding goes on so that one run reports
/// every error of a file.
/// A kind and a name (a resource that was declared, whether or not it decoded).
struct ResourceKey: Hashable, Sendable {
  var kind: Kind
  var name: String
}

final class NodeDecoder {
  var diags: DiagnosticBag
  /// Resources whose kind and name were readable but whose spec was not.
  var invalidDeclared: [ResourceKey] = []
  init(diagnosticLimit: Int = .max) { diags = DiagnosticBag(limit: diagnosticLimit) }

  // MARK: Mappings

  /// A mapping node with its known keys checked.
  struct Fields {
    let node: YAMLNode
    let pairs: [YAMLPair]
    let path: String

    /// The value of `key`, or nil when absent or explicitly null.
    func value(_ key: String) -> YAMLNode? {
      for p in pairs where p.key.scalarText == key {
        return p.value.isPlainNull ? nil : p.value
      }
      return nil
    }

    func keyMark(_ key: String) -> SourceMark? {
      pairs.first { $0.key.scalarText == key }?.key.mark
    }

    func has(_ key: String) -> Bool { value(key) != nil }

    func sub(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }
  }

  /// Checks that `node` is a mapping whose keys are all in `known`; unknown keys are
  /// reported with a did-you-mean suggestion. Returns nil (after reporting) for non-mappings.
  func mapping(_ node: YAMLNode, _ path: @autoclosure () -> String, known: [String]) -> Fields? {
    if isRejected(node) { return nil }
    guard case .mapping(let pairs) = node.value else {
      diags.error(.typeMismatch, "\(path()) must be a mapping, found \(describe(node))", at: node.mark)
      return nil
    }
    for p in pairs {
      guard let k = p.key.scalarText else { continue }  // YAMLKit reports complex keys
      if !known.contains(k) {
        if let invisible = InvisibleText.describeFirst(k) {
          // `\u{FEFF}summary` would print as `summary`: show the character and name it.
          let visible = InvisibleText.removed(k)
          let hint = known.contains(visible) ? " (without it the key is '\(visible)')" : Suggest.hint(visible, known)
          diags.error(
            .unknownField,
            "unknown field '\(clip(k))' in \(path()): the key contains an invisible character (\(invisible)); delete it\(hint)",
            at: p.key.mark)
        } else {
          diags.error(.unknownField, "unknown field '\(clip(k))' in \(path())\(Suggest.hint(k, known))", at: p.key.mark)
        }
      }
    }
    return Fields(node: node, pairs: pairs, path: path())
  }

  /// A mapping with arbitrary keys (labels, cost maps, …): yields (key, keyMark, value).
  func entries(_ node: YAMLNode, _ path: @autoclosure () -> String) -> [(key: String, mark: SourceMark, value: YAMLNode)]? {
    if isRejected(node) { return nil }
    guard case .mapping(let pairs) = node.value else {
      diags.error(.typeMismatch, "\(path()) must be a mapping, found \(describe(node))", at: node.mark)
      return nil
    }
    var out: [(key: String, mark: SourceMark, value: YAMLNode)] = []
    out.reserveCapacity(pairs.count)
    for p in pairs {
      guard let k = p.key.scalarText else { continue }
      out.append((k, p.key.mark, p.value))
    }
    return out
  }

  func requireFields(_ f: Fields, _ keys: [String]) {
    for k in keys where !f.has(k) {
      if f.keyMark(k) != nil {
        diags.error(.missingField, "field '\(k)' in \(f.path) has no value", at: f.keyMark(k)!)
      } else {
        diags.error(.missingField, "missing required field '\(k)' in \(f.path)", at: f.node.mark)
      }
    }
  }

  func exactlyOne(_ f: Fields, _ a: String, _ b: String) {
    let ha = f.has(a)
    let hb = f.has(b)
    if ha && hb {
      diags.error(.mutuallyExclusive, "\(f.path) sets both '\(a)' and '\(b)'; set exactly one", at: f.keyMark(b)!)
    } else if !ha && !hb {
      diags.error(.missingField, "\(f.path) needs exactly one of '\(a)' or '\(b)'", at: f.node.mark)
    }
  }

  // MARK: Scalars

  func describe(_ node: YAMLNode) -> String {
    switch node.value {
    case .mapping: return "a mapping"
    case .sequence: return "a list"
    case .scalar(let s, let style):
      if style != .plain { return "the string \"\(clip(s))\"\(tagNote(node))" }
      switch CoreScalar.resolve(s) {
      case .null: return "null"
      case .bool: return "the boolean \(s)"
      case .float(let d) where d.isNaN: return "\(s) (NaN, not a number)"
      case .float(let d) where d.isInfinite && !Self.isInfinitySpelling(s):
        return "the number \(clip(s)), beyond the range of a 64-bit float"
      case .float(let d) where d.isInfinite: return "\(s) (\(d < 0 ? "minus " : "")infinity)"
      case .int, .float: return "the number \(s)"
      case .string: return "'\(clip(s))'"
      }
    }
  }

  /// User text for a message: at most 40 characters, invisible characters escaped (`\u{200B}`).
  func clip(_ s: String) -> String { InvisibleText.escaped(s.count > 40 ? String(s.prefix(37)) + "..." : s) }

  /// `.inf`, `-.Inf`, … (as opposed to a finite spelling such as 1e400 that overflows a Double).
  static func isInfinitySpelling(_ s: String) -> Bool {
    let t = s.hasPrefix("-") || s.hasPrefix("+") ? s.dropFirst() : Substring(s)
    return t == ".inf" || t == ".Inf" || t == ".INF"
  }

  /// Any non-null scalar as text.
  func string(_ node: YAMLNode, _ path: @autoclosure () -> String) -> String? {
    if isRejected(node) { return nil }
    guard case .scalar(let s, _) = node.value else {
      diags.error(.typeMismatch, "\(path()) must be a string, found \(describe(node))", at: node.mark)
      return nil
    }
    return s
  }

  func string(_ f: Fields, _ key: String, required: Bool = false, maxLength: Int? = nil, minLength: Int = 0) -> String? {
    guard let n = f.value(key) else {
      if required { requireFields(f, [key]) }
      return nil
    }
    guard let s = string(n, f.sub(key)) else { return nil }
    if minLength > 0, s.isEmpty {
      diags.error(.outOfRange, "\(f.sub(key)) must not be empty", at: n.mark)
    } else if let m = maxLength, s.utf8.count > m, s.count > m {  // characters ≤ bytes: count them only when needed
      diags.error(.outOfRange, "\(f.sub(key)) is \(s.count) characters long; at most \(m) are allowed", at: n.mark)
    }
    return s
  }

  /// A string that must match `check`; `what` describes the expected form.
  /// `sensitive`: the field names a secret, so a wrong value may be the secret itself (a
  /// pasted token): the message shows its first 4 characters and its length, never the value.
  func pattern(
    _ f: Fields, _ key: String, required: Bool = false, what: String, code: DiagnosticCode = .invalidValue,
    sensitive: Bool = false, _ check: (String) -> Bool
  ) -> String? {
    guard let n = f.value(key) else {
      if required { requireFields(f, [key]) }
      return nil
    }
    guard let s = string(n, f.sub(key)) else { return nil }
    if !check(s) {
      if sensitive {
        let shown = s.count > 8 ? "'\(s.prefix(4))…' (\(s.count) characters, not shown: it may be a credential)" : "'\(clip(s))'"
        diags.error(
          code, "\(f.sub(key)) \(shown) is not \(what); put credentials in ytempire.yaml `secrets:` and write their name here", at: n.mark)
      } else {
        diags.error(code, "\(f.sub(key)) '\(clip(s))' is not \(what)", at: n.mark)
      }
      return nil
    }
    return s
  }

  func bool(_ f: Fields, _ key: String, required: Bool = false) -> Bool? {
    guard let n = f.value(key) else {
      if required { requireFields(f, [key]) }
      return nil
    }
    return bool(n, f.sub(key))
  }

  func bool(_ n: YAMLNode, _ path: @autoclosure () -> String) -> Bool? {
    if isRejected(n) { return nil }
    if case .scalar(let s, let style) = n.value, style == .plain {
      if case .bool(let b) = CoreScalar.resolve(s) { return b }
      if CoreScalar.yaml11Booleans.contains(s) {
        diags.error(.yaml11Boolean, "\(path()): '\(s)' is not a boolean in YAML 1.2; write true or false", at: n.mark)
        return nil
      }
    }
    diags.error(.typeMismatch, "\(path()) must be a boolean (true or false), found \(describe(n))", at: n.mark)
    return nil
  }

  func int(_ f: Fields, _ key: String, required: Bool = false, min: Int? = nil, max: Int? = nil) -> Int? {
    guard let n = f.value(key) else {
      if required { requireFields(f, [key]) }
      return nil
    }
    return int(n, f.sub(key), min: min, max: max)
  }

  /// The magnitude no integer field may exceed, whatever its own range (docs/resource-model.md).
  /// 10^15 is exact as a Double, and a sum of a million such values or a product of one with a
  /// count below 9,000 still fits in an Int, so the checks that combine fields cannot trap.
  static let integerLimit = 1_000_000_000_000_000

  func int(_ n: YAMLNode, _ path: @autoclosure () -> String, min: Int? = nil, max: Int? = nil) -> Int? {
    if isRejected(n) { return nil }
    if n.tag == CoreTag.float.resolved {
      diags.error(.typeMismatch, "\(path()) must be an integer, found a number tagged !!float", at: n.mark)
      return nil
    }
    guard case .scalar(let s, let style) = n.value, style == .plain else {
      diags.error(.typeMismatch, "\(path()) must be an integer, found \(describe(n))", at: n.mark)
      return nil
    }
    let lo = Swift.max(min ?? -Self.integerLimit, -Self.integerLimit)
    let hi = Swift.min(max ?? Self.integerLimit, Self.integerLimit)
    guard case .int(let v) = CoreScalar.resolve(s) else {
      if CoreScalar.isIntegerSpelling(s) {
        // Digits only, but beyond Int: out of range rather than "not an integer".
        diags.error(.outOfRange, "\(path()) is \(clip(s)); it must be \(s.hasPrefix("-") ? "at least \(lo)" : "at most \(hi)")", at: n.mark)
      } else {
        diags.error(.typeMismatch, "\(path()) must be an integer, found \(describe(n))", at: n.mark)
      }
      return nil
    }
    if v < lo {
      diags.error(.outOfRange, "\(path()) is \(v); it must be at least \(lo)", at: n.mark)
      return nil
    }
    if v > hi {
      diags.error(.outOfRange, "\(path()) is \(v); it must be at most \(hi)", at: n.mark)
      return nil
    }
    return v
  }

  /// A plain number. `exclusiveMin` rejects the bound itself.
  func number(_ f: Fields, _ key: String, required: Bool = false, min: Double? = nil, max: Double? = nil, exclusiveMin: Bool = false)
    -> Double?
  {
    guard let n = f.value(key) else {
      if required { requireFields(f, [key]) }
      return nil
    }
    return number(n, f.sub(key), min: min, max: max, exclusiveMin: exclusiveMin)
  }

  func number(_ n: YAMLNode, _ path: @autoclosure () -> String, min: Double? = nil, max: Double? = nil, exclusiveMin: Bool = false)
    -> Double?
  {
    if isRejected(n) { return nil }
    var value: Double?
    if case .scalar(let s, let style) = n.value, style == .plain {
      switch CoreScalar.resolve(s) {
      case .int(let i): value = Double(i)
      case .float(let d) where d.isFinite: value = d
      case .float(let d) where d.isNaN:
        diags.error(.invalidValue, "\(path()) is \(s) (NaN); NaN is not allowed, write a finite number", at: n.mark)
        return nil
      case .float(let d) where Self.isInfinitySpelling(s):
        diags.error(
          .invalidValue, "\(path()) is \(s) (\(d < 0 ? "minus " : "")infinity); infinity is not allowed, write a finite number", at: n.mark)
        return nil
      case .float:
        diags.error(
          .outOfRange, "\(path()) is \(clip(s)), beyond the range of a 64-bit float (about ±1.8e308); write a finite number", at: n.mark)
        return nil
      default: break
      }
    }
    guard let v = value else {
      var extra = ""
      if case .scalar(let s, let style) = n.value, style != .plain, Double(s) != nil {
        extra = n.tag == CoreTag.str.resolved ? "; remove the tag" : " (quoted values are strings; remove the quotes)"
      }
      diags.error(.typeMismatch, "\(path()) must be a number, found \(describe(n))\(extra)", at: n.mark)
      return nil
    }
    if let lo = min, exclusiveMin ? v <= lo : v < lo {
      diags.error(.outOfRange, "\(path()) is \(fmt(v)); it must be \(exclusiveMin ? "greater than" : "at least") \(fmt(lo))", at: n.mark)
      return nil
    }
    if let hi = max, v > hi {
      diags.error(.outOfRange, "\(path()) is \(fmt(v)); it must be at most \(fmt(hi))", at: n.mark)
      return nil
    }
    return v
  }

  private func fmt(_ d: Double) -> String {
    d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)
  }

  func duration(_ f: Fields, _ key: String, required: Bool = false) -> ModelDuration? {
    guard let n = f.value(key) else {
      if required { requireFields(f, [key]) }
      return nil
    }
    return duration(n, f.sub(key))
  }

  func duration(_ n: YAMLNode, _ path: @autoclosure () -> String) -> ModelDuration? {
    if isRejected(n) { return nil }
    guard case .scalar(let s, let style) = n.value else {
      diags.error(.typeMismatch, "\(path()) must be a duration such as 30s, 5m, 8h, 7d or 1h30m, found \(describe(n))", at: n.mark)
      return nil
    }
    switch ModelDuration.check(s) {
    case .valid(let d): return d
    case .tooLarge:
      durationTooLarge(path(), s, at: n.mark)
      return nil
    case .tooLong:
      diags.error(
        .invalidDuration,
        "\(path()) is \(s.utf8.count) characters long; a duration is at most \(ModelDuration.maximumLength) characters, such as 30s, 5m, 8h, 7d or 1h30m",
        at: n.mark)
      return nil
    case .invalid: break
    }
    if style == .plain, case .int = CoreScalar.resolve(s) {
      diags.error(
        .invalidDuration, "\(path()): a bare number (\(s)) is not a duration; add a unit: ms, s, m, h or d (for example \(s)s)", at: n.mark)
    } else {
      diags.error(
        .invalidDuration,
        "\(path()) '\(clip(s))' is not a duration; write a number with a unit (ms, s, m, h, d), largest unit first, such as 30s, 5m, 8h, 7d or 1h30m",
        at: n.mark)
    }
    return nil
  }

  func durationTooLarge(_ path: String, _ s: String, at mark: SourceMark) {
    diags.error(
      .outOfRange, "\(path) '\(clip(s))' is too large; a duration is at most \(ModelDuration.maximum) (about 100 years)", at: mark)
  }

  func enumeration<E: RawRepresentable & CaseIterable>(_ f: Fields, _ key: String, required: Bool = false, _ type: E.Type) -> E?
  where E.RawValue == String {
    guard let n = f.value(key) else {
      if required { requireFields(f, [key]) }
      return nil
    }
    return enumeration(n, f.sub(key), type)
  }

  func enumeration<E: RawRepresentable & CaseIterable>(_ n: YAMLNode, _ path: @autoclosure () -> String, _ type: E.Type) -> E?
  where E.RawValue == String {
    guard let s = string(n, path()) else { return nil }
    if let e = E(rawValue: s) { return e }
    let all = E.allCases.map(\.rawValue)
    diags.error(.invalidEnum, "\(path()) '\(clip(s))' is not one of \(all.joined(separator: ", "))\(Suggest.hint(s, all))", at: n.mark)
    return nil
  }

  func name(_ f: Fields, _ key: String, required: Bool = false, what: String = "a valid name") -> Reference? {
    guard let n = f.value(key) else {
      if required { requireFields(f, [key]) }
      return nil
    }
    return name(n, f.sub(key))
  }

  func name(_ n: YAMLNode, _ path: @autoclosure () -> String) -> Reference? {
    guard let s = string(n, path()) else { return nil }
    guard Names.isValid(s) else {
      diags.error(.invalidName, "\(path()) '\(clip(s))' is not a valid name: \(Names.rule)", at: n.mark)
      return nil
    }
    return Reference(name: s, mark: n.mark)
  }

  func secretRef(_ f: Fields, _ key: String, required: Bool = false) -> String? {
    pattern(
      f, key, required: required, what: "a secret name (lowercase letters, digits, '-', '_', '.')", code: .invalidName, sensitive: true,
      Names.isSecretName)
  }

  func url(_ f: Fields, _ key: String, required: Bool = false) -> String? {
    guard let n = f.value(key) else {
      if required { requireFields(f, [key]) }
      return nil
    }
    return url(n, f.sub(key))
  }

  func url(_ n: YAMLNode, _ path: @autoclosure () -> String) -> String? {
    guard let s = string(n, path()) else { return nil }
    if let problem = URLCheck.problem(s) {
      diags.error(.invalidURL, "\(path()) '\(clip(s))' is not a valid URL: \(problem)", at: n.mark)
      return nil
    }
    return s
  }

  func timezone(_ f: Fields, _ key: String, required: Bool = false) -> String? {
    guard let n = f.value(key) else {
      if required { requireFields(f, [key]) }
      return nil
    }
    guard let s = string(n, f.sub(key)) else { return nil }
    if !TimeZones.exists(s) {
      diags.error(.unknownTimezone, "\(f.sub(key)) '\(clip(s))' is not a time zone in the IANA database\(TimeZones.hint(s))", at: n.mark)
      return nil
    }
    return s
  }

  func relativePath(_ f: Fields, _ key: String, required: Bool = false, suffix: String? = nil) -> String? {
    guard let n = f.value(key) else {
      if required { requireFields(f, [key]) }
      return nil
    }
    guard let s = string(n, f.sub(key)) else { return nil }
    if let problem = Names.relativePathProblem(s) {
      diags.error(.invalidPath, "\(f.sub(key)) '\(clip(s))' \(problem)", at: n.mark)
      return nil
    }
    if let suffix, !s.hasSuffix(suffix) {
      diags.error(.invalidPath, "\(f.sub(key)) '\(clip(s))' must name a \(suffix) file", at: n.mark)
      return nil
    }
    return Names.normalizedRelativePath(s)
  }

  // MARK: Collections

  func list(_ f: Fields, _ key: String, required: Bool = false) -> [(path: String, node: YAMLNode)]? {
    guard let n = f.value(key) else {
      if required { requireFields(f, [key]) }
      return nil
    }
    return list(n, f.sub(key))
  }

  func list(_ n: YAMLNode, _ path: @autoclosure () -> String) -> [(path: String, node: YAMLNode)]? {
    if isRejected(n) { return nil }
    guard case .sequence(let items) = n.value else {
      diags.error(.typeMismatch, "\(path()) must be a list, found \(describe(n))", at: n.mark)
      return nil
    }
    let base = path()
    return items.enumerated().map { ("\(base)[\($0.offset)]", $0.element) }
  }

  func stringList(_ f: Fields, _ key: String, required: Bool = false, maxLength: Int? = nil, check: ((String) -> String?)? = nil)
    -> [String]?
  {
    guard let items = list(f, key, required: required) else { return nil }
    var out: [String] = []
    out.reserveCapacity(items.count)
    for (p, n) in items {
      guard let s = string(n, p) else { continue }
      if let m = maxLength, s.utf8.count > m, s.count > m {
        diags.error(.outOfRange, "\(p) is \(s.count) characters long; at most \(m) are allowed", at: n.mark)
      } else if s.isEmpty {
        diags.error(.outOfRange, "\(p) must not be empty", at: n.mark)
      } else if let check, let problem = check(s) {
        diags.error(.invalidValue, "\(p) '\(clip(s))' \(problem)", at: n.mark)
      } else {
        out.append(s)
      }
    }
    return out
  }

  func nameList(_ f: Fields, _ key: String, required: Bool = false) -> [Reference]? {
    guard let items = list(f, key, required: required) else { return nil }
    return items.compactMap { name($0.node, $0.path) }
  }

  func enumList<E: RawRepresentable & CaseIterable>(_ f: Fields, _ key: String, _ type: E.Type) -> [E]? where E.RawValue == String {
    guard let items = list(f, key) else { return nil }
    return items.compactMap { enumeration($0.node, $0.path, type) }
  }

  /// A string → string map (labels, annotations, matchLabels, voices…).
  func stringMap(_ f: Fields, _ key: String, required: Bool = false, keyCheck: ((String) -> String?)? = nil) -> [String: String]? {
    guard let n = f.value(key) else {
      if required { requireFields(f, [key]) }
      return nil
    }
    guard let es = entries(n, f.sub(key)) else { return nil }
    var out: [String: String] = [:]
    for e in es {
      if let keyCheck, let problem = keyCheck(e.key) {
        diags.error(.invalidValue, "key '\(clip(e.key))' in \(f.sub(key)) \(problem)\(invisibleNote(e.key))", at: e.mark)
        continue
      }
      if let s = string(e.value, "\(f.sub(key)).\(e.key)") { out[e.key] = s }
    }
    return out
  }

  /// A map keyed by service name (schedule services, key-rotation ages), each value decoded by `value`.
  func serviceMap<T>(_ f: Fields, _ key: String, value: (YAMLNode, String) -> T?) -> [String: T]? {
    guard let n = f.value(key), let es = entries(n, f.sub(key)) else { return nil }
    var out: [String: T] = [:]
    for e in es {
      guard Names.isServiceName(e.key) else {
        diags.error(
          .invalidName,
          "service name '\(clip(e.key))' in \(f.sub(key)) is not valid: a name that starts with a letter (\(Names.rule))\(invisibleNote(e.key))",
          at: e.mark)
        continue
      }
      if let v = value(e.value, "\(f.sub(key)).\(e.key)") { out[e.key] = v }
    }
    return out
  }

  /// "; the key contains an invisible character (U+200B ZERO WIDTH SPACE)" or "".
  func invisibleNote(_ key: String) -> String {
    InvisibleText.describeFirst(key).map { "; the key contains an invisible character (\($0))" } ?? ""
  }

  /// Reports entries of a list of mappings that repeat the same `name`.
  func checkUnique(_ names: [Reference], in path: String, what: String = "name") {
    var seen: [String: SourceMark] = [:]
    for r in names {
      if let first = seen[r.name] {
        diags.error(
          .duplicateEntry, "\(path) has two entries with \(what) '\(r.name)'", at: r.mark,
          notes: [.init("first defined here", at: first)])
      } else {
        seen[r.name] = r.mark
      }
    }
  }
}

/// The YAML 1.2 core schema's resolution of plain scalars.
enum CoreScalar: Equatable {
  case null
  case bool(Bool)
  case int(Int)
  case float(Double)
  case string

  static let yaml11Booleans: Set<String> = [
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
    "on", "On", "ON", "off", "Off", "OFF",
  ]

  static func resolve(_ s: String) -> CoreScalar {
    switch s {
    case "", "~", "null", "Null", "NULL": return .null
    case "true", "True", "TRUE": return .bool(true)
    case "false", "False", "FALSE": return .bool(false)
    case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF": return .float(.infinity)
    case "-.inf", "-.Inf", "-.INF": return .float(-.infinity)
    case ".nan", ".NaN", ".NAN": return .float(.nan)
    default: break
    }
    let u = s.utf8
    guard let first = u.first else { return .string }
    // Fast reject: numbers start with a digit, sign or dot.
    if !(first >= 0x30 && first <= 0x39) && first != UInt8(ascii: "-") && first != UInt8(ascii: "+") && first != UInt8(ascii: ".") {
      return .string
    }
    if s.hasPrefix("0o"), let v = Int(s.dropFirst(2), radix: 8) { return .int(v) }
    if s.hasPrefix("0x"), let v = Int(s.dropFirst(2), radix: 16) { return .int(v) }
    if isDecimalInt(u) { return Int(s).map { .int($0) } ?? .string }
    if isFloat(u), let d = Double(s) { return .float(d) }
    return .string
  }

  /// A decimal, octal (0o) or hexadecimal (0x) integer spelling, whether or not it fits in an Int.
  static func isIntegerSpelling(_ s: String) -> Bool {
    if s.hasPrefix("0o") { return s.count > 2 && s.dropFirst(2).allSatisfy { ("0"..."7").contains($0) } }
    if s.hasPrefix("0x") { return s.count > 2 && s.dropFirst(2).allSatisfy(\.isHexDigit) }
    return isDecimalInt(s.utf8)
  }

  private static func isDecimalInt(_ u: String.UTF8View) -> Bool {
    var it = u.makeIterator()
    var c = it.next()
    if c == UInt8(ascii: "-") || c == UInt8(ascii: "+") { c = it.next() }
    guard c != nil else { return false }
    while let ch = c {
      if ch < 0x30 || ch > 0x39 { return false }
      c = it.next()
    }
    return true
  }

  /// `[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
  private static func isFloat(_ u: String.UTF8View) -> Bool {
    let b = Array(u)
    var i = 0
    if i < b.count, b[i] == UInt8(ascii: "-") || b[i] == UInt8(ascii: "+") { i += 1 }
    var digits = 0
    while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
      i += 1
      digits += 1
    }
    if i < b.count, b[i] == UInt8(ascii: ".") {
      i += 1
      var frac = 0
      while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
        i += 1
        frac += 1
      }
      if digits == 0 && frac == 0 { return false }
    } else if digits == 0 {
      return false
    }
    if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
      i += 1
      if i < b.count, b[i] == UInt8(ascii: "-") || b[i] == UInt8(ascii: "+") { i += 1 }
      var exp = 0
      while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
        i += 1
        exp += 1
      }
      if exp == 0 { return false }
    }
    return i == b.count
  }
}
