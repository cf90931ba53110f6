/// A span of time written as `30s`, `5m`, `8h`, `7d`, `1h30m` or `500ms` in manifests.
/// Stored as whole milliseconds; `description` gives back the canonical spelling.
public struct ModelDuration: Sendable, Hashable, Comparable, CustomStringConvertible, Codable {
  public var milliseconds: Int64

  public init(milliseconds: Int64) { self.milliseconds = milliseconds }
  public static func seconds(_ s: Int64) -> ModelDuration { ModelDuration(milliseconds: s * 1000) }

  public var seconds: Double { Double(milliseconds) / 1000 }
  public var swiftDuration: Duration { .milliseconds(milliseconds) }

  public static func < (a: ModelDuration, b: ModelDuration) -> Bool { a.milliseconds < b.milliseconds }

  /// Units in the order they must appear.
  static let units: [(suffix: String, ms: Int64)] = [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)]

  /// The largest duration: 36500 days (about 100 years). Far beyond any timeout, retention or
  /// key age, and small enough that a duration in milliseconds times any factor a field allows
  /// (backoff multipliers, adaptive factors) stays far inside Int64 and a Double of seconds.
  public static let maximumDays: Int64 = 36_500
  public static let maximum = ModelDuration(milliseconds: maximumDays * 86_400_000)
  /// Longest spelling read (a longer one is refused before it is parsed).
  public static let maximumLength = 40

  /// What a spelling is.
  public enum Check: Equatable, Sendable {
    case valid(ModelDuration)
    /// Well formed, but more than `maximum` (including sums beyond Int64 milliseconds).
    case tooLarge
    /// Longer than `maximumLength` characters.
    case tooLong
    /// Not the duration syntax.
    case invalid
  }

  /// Parses the manifest spelling. Units must appear at most once, largest first.
  public static func parse(_ text: String) -> ModelDuration? {
    if case .valid(let d) = check(text) { return d }
    return nil
  }

  /// Parses the manifest spelling, telling a malformed one from one that is too large.
  public static func check(_ text: String) -> Check {
    let bytes = Array(text.utf8.prefix(maximumLength + 1))
    guard !bytes.isEmpty else { return .invalid }
    guard bytes.count <= maximumLength else { return .tooLong }
    var i = 0
    var total: Int64 = 0
    var overflow = false
    var lastUnit = -1
    while i < bytes.count {
      var value: Int64 = 0
      let start = i
      while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 {
        // Past Int64 the digits are still read, so the syntax is checked before "too large".
        if !overflow {
          let (m, o1) = value.multipliedReportingOverflow(by: 10)
          let (a, o2) = m.addingReportingOverflow(Int64(bytes[i] - 0x30))
          if o1 || o2 { overflow = true } else { value = a }
        }
        i += 1
      }
      if i == start { return .invalid }
      // Unit: "ms" must be tried before "m".
      var unit = -1
      if i + 1 < bytes.count, bytes[i] == UInt8(ascii: "m"), bytes[i + 1] == UInt8(ascii: "s") {
        unit = 4
        i += 2
      } else if i < bytes.count {
        switch bytes[i] {
        case UInt8(ascii: "d"): unit = 0
        case UInt8(ascii: "h"): unit = 1
        case UInt8(ascii: "m"): unit = 2
        case UInt8(ascii: "s"): unit = 3
        default: return .invalid
        }
        i += 1
      } else {
        return .invalid
      }
      if unit <= lastUnit { return .invalid }
      lastUnit = unit
      if !overflow {
        let (p, o3) = value.multipliedReportingOverflow(by: units[unit].ms)
        let (t, o4) = total.addingReportingOverflow(p)
        if o3 || o4 { overflow = true } else { total = t }
      }
    }
    if overflow || total > maximum.milliseconds { return .tooLarge }
    return .valid(ModelDuration(milliseconds: total))
  }

  public var description: String {
    if milliseconds == 0 { return "0s" }
    var rest = milliseconds
    var out = ""
    for (suffix, ms) in Self.units where rest >= ms {
      out += "\(rest / ms)\(suffix)"
      rest %= ms
    }
    return out
  }

  public init(from decoder: any Decoder) throws {
    let s = try decoder.singleValueContainer().decode(String.self)
    guard let d = ModelDuration.parse(s) else {
      throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "invalid duration \(s)"))
    }
    self = d
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.singleValueContainer()
    try c.encode(description)
  }
}
