import Foundation

/// A JSON value: what drivers observe, what they want, and what a plan carries. Objects are
/// dictionaries, so two values compare equal whatever their key order; `canonicalBytes` writes
/// keys sorted, so digests of equal values are equal.
public enum JSONValue: Sendable, Hashable, Codable {
  case null
  case bool(Bool)
  case int(Int64)
  case double(Double)
  case string(String)
  case array([JSONValue])
  case object([String: JSONValue])

  public init(from decoder: any Decoder) throws {
    let c = try decoder.singleValueContainer()
    if c.decodeNil() {
      self = .null
    } else if let b = try? c.decode(Bool.self) {
      self = .bool(b)
    } else if let i = try? c.decode(Int64.self) {
      self = .int(i)
    } else if let d = try? c.decode(Double.self) {
      self = .double(d)
    } else if let s = try? c.decode(String.self) {
      self = .string(s)
    } else if let a = try? c.decode([JSONValue].self) {
      self = .array(a)
    } else {
      self = .object(try c.decode([String: JSONValue].self))
    }
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.singleValueContainer()
    switch self {
    case .null: try c.encodeNil()
    case .bool(let b): try c.encode(b)
    case .int(let i): try c.encode(i)
    case .double(let d): try c.encode(d)
    case .string(let s): try c.encode(s)
    case .array(let a): try c.encode(a)
    case .object(let o): try c.encode(o)
    }
  }

  // MARK: access

  public subscript(_ key: String) -> JSONValue? {
    if case .object(let o) = self { return o[key] }
    return nil
  }
  public var string: String? { if case .string(let s) = self { s } else { nil } }
  public var bool: Bool? { if case .bool(let b) = self { b } else { nil } }
  public var int: Int64? {
    switch self {
    case .int(let i): i
    case .double(let d) where d.rounded() == d && abs(d) < 9e15: Int64(d)
    default: nil
    }
  }
  public var double: Double? {
    switch self {
    case .int(let i): Double(i)
    case .double(let d): d
    default: nil
    }
  }
  public var array: [JSONValue]? { if case .array(let a) = self { a } else { nil } }
  public var object: [String: JSONValue]? { if case .object(let o) = self { o } else { nil } }
  public var isNull: Bool { self == .null }
  /// "an object", "a string", … for messages about an answer of the wrong shape.
  public var typeDescription: String {
    switch self {
    case .null: "null"
    case .bool: "a boolean"
    case .int, .double: "a number"
    case .string: "a string"
    case .array: "an array"
    case .object: "an object"
    }
  }

  /// Reads the value at a dotted path (`brandingSettings.channel.title`).
  public func at(_ path: String) -> JSONValue? {
    var v: JSONValue? = self
    for k in path.split(separator: ".") { v = v?[String(k)] }
    return v
  }

  // MARK: wire

  /// Parses JSON bytes (limited to `maxDepth` nesting).
  public static func parse(_ bytes: [UInt8], maxDepth: Int = 64) throws -> JSONValue {
    let d = JSONDecoder()
    let v = try d.decode(JSONValue.self, from: Data(bytes))
    guard v.depth <= maxDepth else { throw JSONValueError.tooDeep(maxDepth) }
    return v
  }

  public var depth: Int {
    var best = 0
    var stack: [(JSONValue, Int)] = [(self, 1)]
    while let (v, d) = stack.popLast() {
      best = max(best, d)
      switch v {
      case .array(let a): for x in a { stack.append((x, d + 1)) }
      case .object(let o): for x in o.values { stack.append((x, d + 1)) }
      default: break
      }
    }
    return best
  }

  /// Compact JSON with sorted keys: equal values give equal bytes.
  public var canonicalBytes: [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(64)
    write(into: &out)
    return out
  }
  public var canonicalString: String { String(decoding: canonicalBytes, as: UTF8.self) }

  /// `s` as a JSON string literal (quotes, backslash escapes, control characters as \u00XX).
  public static func quoted(_ s: String) -> String {
    var out: [UInt8] = []
    quote(s, into: &out)
    return String(decoding: out, as: UTF8.self)
  }

  private func write(into out: inout [UInt8]) {
    switch self {
    case .null: out += Array("null".utf8)
    case .bool(let b): out += Array((b ? "true" : "false").utf8)
    case .int(let i): out += Array(String(i).utf8)
    case .double(let d):
      if d.isFinite, d.rounded() == d, abs(d) < 9e15 {
        out += Array(String(Int64(d)).utf8)
      } else if d.isFinite {
        out += Array("\(d)".utf8)
      } else {
        out += Array("null".utf8)
      }
    case .string(let s): JSONValue.quote(s, into: &out)
    case .array(let a):
      out.append(0x5B)
      for (i, x) in a.enumerated() {
        if i > 0 { out.append(0x2C) }
        x.write(into: &out)
      }
      out.append(0x5D)
    case .object(let o):
      out.append(0x7B)
      for (i, k) in o.keys.sorted().enumerated() {
        if i > 0 { out.append(0x2C) }
        JSONValue.quote(k, into: &out)
        out.append(0x3A)
        o[k]!.write(into: &out)
      }
      out.append(0x7D)
    }
  }

  static func quote(_ s: String, into out: inout [UInt8]) {
    out.append(0x22)
    for b in s.utf8 {
      switch b {
      case 0x22: out += [0x5C, 0x22]
      case 0x5C: out += [0x5C, 0x5C]
      case 0x0A: out += [0x5C, 0x6E]
      case 0x0D: out += [0x5C, 0x72]
      case 0x09: out += [0x5C, 0x74]
      case 0..<0x20, 0x7F:
        let hex = Array("0123456789abcdef".utf8)
        out += [0x5C, 0x75, 0x30, 0x30, hex[Int(b >> 4)], hex[Int(b & 0xF)]]
      default: out.append(b)
      }
    }
    out.append(0x22)
  }
}

public enum JSONValueError: Error, Sendable, CustomStringConvertible {
  case tooDeep(Int)
  public var description: String {
    switch self {
    case .tooDeep(let n): "JSON nested deeper than \(n) levels"
    }
  }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
  ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
  public init(stringLiteral v: String) { self = .string(v) }
  public init(booleanLiteral v: Bool) { self = .bool(v) }
  public init(integerLiteral v: Int64) { self = .int(v) }
  public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
  public init(dictionaryLiteral elements: (String, JSONValue)...) {
    var o: [String: JSONValue] = [:]
    for (k, v) in elements { o[k] = v }
    self = .object(o)
  }
  // Deliberately not ExpressibleByNilLiteral: `nil` in a `JSONValue?` context (a ternary, a
  // closure's result) would silently become `.null`, an observed value, instead of "none".
}

extension JSONValue {
  public init(_ s: String?) { self = s.map(JSONValue.string) ?? .null }
  public init(_ a: [String]?) { self = a.map { .array($0.map(JSONValue.string)) } ?? .null }
  public init(_ i: Int?) { self = i.map { .int(Int64($0)) } ?? .null }
  public init(_ d: Double?) { self = d.map(JSONValue.double) ?? .null }
  public init(_ b: Bool?) { self = b.map(JSONValue.bool) ?? .null }
}
