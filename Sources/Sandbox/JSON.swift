import Foundation

/// A JSON value. The emulators keep API resources as JSON so that what a client sent is
/// what it reads back, field for field, like the real services.
public enum JSON: Sendable, Equatable, Codable {
  case null
  case bool(Bool)
  case int(Int)
  case double(Double)
  case string(String)
  case array([JSON])
  case object([String: JSON])

  public init(from decoder: any Decoder) throws {
    let c = try decoder.singleValueContainer()
    if c.decodeNil() {
      self = .null
      return
    }
    if let b = try? c.decode(Bool.self) {
      self = .bool(b)
      return
    }
    if let i = try? c.decode(Int.self) {
      self = .int(i)
      return
    }
    if let d = try? c.decode(Double.self) {
      self = .double(d)
      return
    }
    if let s = try? c.decode(String.self) {
      self = .string(s)
      return
    }
    if let a = try? c.decode([JSON].self) {
      self = .array(a)
      return
    }
    self = .object(try c.decode([String: JSON].self))
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

  /// Parses bytes; nil when they are not one JSON value.
  public static func parse(_ bytes: [UInt8]) -> JSON? {
    guard !bytes.isEmpty else { return nil }
    return try? JSONDecoder().decode(JSON.self, from: Data(bytes))
  }

  public static func parse(_ s: String) -> JSON? { parse(Array(s.utf8)) }

  public subscript(key: String) -> JSON? {
    get { if case .object(let o) = self { o[key] } else { nil } }
    set {
      guard case .object(var o) = self else { return }
      o[key] = newValue
      self = .object(o)
    }
  }

  public var string: String? { if case .string(let s) = self { s } else { nil } }
  public var int: Int? {
    switch self {
    case .int(let i): i
    case .double(let d) where d == d.rounded() && abs(d) < 1e15: Int(d)
    default: nil
    }
  }
  public var bool: Bool? { if case .bool(let b) = self { b } else { nil } }
  public var array: [JSON]? { if case .array(let a) = self { a } else { nil } }
  public var object: [String: JSON]? { if case .object(let o) = self { o } else { nil } }
  public var isNull: Bool { self == .null }

  /// Compact serialisation with sorted keys (stable etags and test output).
  public var serialized: String {
    var out = ""
    write(to: &out)
    return out
  }

  public var bytes: [UInt8] { Array(serialized.utf8) }

  private func write(to out: inout String) {
    switch self {
    case .null: out += "null"
    case .bool(let b): out += b ? "true" : "false"
    case .int(let i): out += String(i)
    case .double(let d):
      if d.isFinite {
        if d == d.rounded() && abs(d) < 1e15 { out += String(Int(d)) } else { out += String(d) }
      } else {
        out += "null"
      }
    case .string(let s): JSON.quote(s, into: &out)
    case .array(let a):
      out += "["
      for (i, v) in a.enumerated() {
        if i > 0 { out += "," }
        v.write(to: &out)
      }
      out += "]"
    case .object(let o):
      out += "{"
      for (i, k) in o.keys.sorted().enumerated() {
        if i > 0 { out += "," }
        JSON.quote(k, into: &out)
        out += ":"
        o[k]!.write(to: &out)
      }
      out += "}"
    }
  }

  static func quote(_ s: String, into out: inout String) {
    out += "\""
    for u in s.unicodeScalars {
      switch u {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      default:
        if u.value < 0x20 {
          out += String(format: "\\u%04x", u.value)
        } else {
          out.unicodeScalars.append(u)
        }
      }
    }
    out += "\""
  }

  /// RFC 7386 merge patch: objects merge recursively, `null` deletes, anything else replaces.
  public func merged(with patch: JSON) -> JSON {
    guard case .object(let p) = patch else { return patch }
    var base = self.object ?? [:]
    for (k, v) in p {
      if v == .null { base[k] = nil } else { base[k] = (base[k] ?? .null).merged(with: v) }
    }
    return .object(base)
  }
}

extension JSON: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
  ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByFloatLiteral
{
  public init(stringLiteral value: String) { self = .string(value) }
  public init(integerLiteral value: Int) { self = .int(value) }
  public init(booleanLiteral value: Bool) { self = .bool(value) }
  public init(floatLiteral value: Double) { self = .double(value) }
  public init(arrayLiteral elements: JSON...) { self = .array(elements) }
  public init(dictionaryLiteral elements: (String, JSON)...) {
    var o: [String: JSON] = [:]
    for (k, v) in elements { o[k] = v }
    self = .object(o)
  }
}

extension JSON {
  static func str(_ s: String?) -> JSON { s.map { .string($0) } ?? .null }
}

/// Converts any Codable (the world) to JSON and back, for the admin API and persistence.
enum JSONBridge {
  static func toJSON<T: Encodable>(_ v: T) throws -> JSON {
    let data = try JSONEncoder().encode(v)
    return try JSONDecoder().decode(JSON.self, from: data)
  }

  static func fromJSON<T: Decodable>(_ j: JSON, as: T.Type) throws -> T {
    try JSONDecoder().decode(T.self, from: Data(j.serialized.utf8))
  }
}
