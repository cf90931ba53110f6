/// A standard 5-field cron expression: minute hour day-of-month month day-of-week.
///
/// Supports `*`, single values, ranges `a-b`, steps `*/n` and `a-b/n` (and `a/n`, meaning
/// `a-max/n`), lists `a,b,c`, month names `jan`–`dec` and weekday names `sun`–`sat`
/// (case-insensitive); day-of-week 7 is Sunday, like 0.
public struct CronExpression: Sendable, Hashable, CustomStringConvertible {
  public var minutes: UInt64  // bits 0–59
  public var hours: UInt64  // bits 0–23
  public var daysOfMonth: UInt64  // bits 1–31
  public var months: UInt64  // bits 1–12
  public var daysOfWeek: UInt64  // bits 0–6 (Sunday = 0)
  /// True when the day-of-month field was `*` (matters for cron's OR rule between the day fields).
  public var dayOfMonthIsWildcard: Bool
  public var dayOfWeekIsWildcard: Bool
  public let source: String

  public var description: String { source }

  public struct ParseError: Error, Sendable, Equatable {
    public var message: String
  }

  struct Field {
    let name: String
    let min: Int
    let max: Int
    let names: [String]  // index + min = value
  }

  static let fields: [Field] = [
    Field(name: "minute", min: 0, max: 59, names: []),
    Field(name: "hour", min: 0, max: 23, names: []),
    Field(name: "day-of-month", min: 1, max: 31, names: []),
    Field(name: "month", min: 1, max: 12, names: ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]),
    Field(name: "day-of-week", min: 0, max: 7, names: ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]),
  ]

  public init(parsing text: String) throws(ParseError) {
    source = text
    guard text.utf8.count <= 200 else { throw ParseError(message: "cron expression is longer than 200 characters") }
    let parts = text.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
    guard parts.count == 5 else {
      throw ParseError(message: "cron expression needs 5 fields (minute hour day-of-month month day-of-week), found \(parts.count)")
    }
    var masks: [UInt64] = []
    for (i, part) in parts.enumerated() {
      masks.append(try Self.parseField(part, Self.fields[i]))
    }
    minutes = masks[0]
    hours = masks[1]
    daysOfMonth = masks[2]
    months = masks[3]
    var dow = masks[4]
    if dow & (1 << 7) != 0 { dow = (dow & ~(1 << 7)) | 1 }
    daysOfWeek = dow
    dayOfMonthIsWildcard = parts[2] == "*" || parts[2] == "?"
    dayOfWeekIsWildcard = parts[4] == "*" || parts[4] == "?"
  }

  static func parseField(_ text: String, _ f: Field) throws(ParseError) -> UInt64 {
    var mask: UInt64 = 0
    for item in text.split(separator: ",", omittingEmptySubsequences: false) {
      guard !item.isEmpty else { throw ParseError(message: "empty list item in \(f.name) field '\(text)'") }
      let stepSplit = item.split(separator: "/", omittingEmptySubsequences: false)
      guard stepSplit.count <= 2 else { throw ParseError(message: "more than one '/' in \(f.name) field '\(item)'") }
      var step = 1
      if stepSplit.count == 2 {
        guard let s = Int(stepSplit[1]), s >= 1, s <= f.max else {
          throw ParseError(message: "invalid step '\(stepSplit[1])' in \(f.name) field (must be 1–\(f.max))")
        }
        step = s
      }
      let base = stepSplit[0]
      var lo: Int
      var hi: Int
      if base == "*" || base == "?" {
        lo = f.min
        hi = f.max
        if f.name == "day-of-week" { hi = 6 }
      } else {
        let range = base.split(separator: "-", omittingEmptySubsequences: false)
        guard range.count <= 2 else { throw ParseError(message: "invalid range '\(base)' in \(f.name) field") }
        lo = try value(range[0], f)
        if range.count == 2 {
          hi = try value(range[1], f)
          guard lo <= hi else { throw ParseError(message: "range '\(base)' in \(f.name) field goes backwards") }
        } else {
          hi = stepSplit.count == 2 ? f.max : lo
        }
      }
      var v = lo
      while v <= hi {
        mask |= 1 << UInt64(v)
        v += step
      }
    }
    return mask
  }

  /// True when no date ever matches: the day-of-month field alone restricts the days (the
  /// day-of-week field is `*`) and names only days past the end of every chosen month, such
  /// as `0 0 31 2 *` or `0 0 30,31 2 *`. February counts 29 days (leap years fire).
  public var canNeverFire: Bool {
    guard !dayOfMonthIsWildcard, dayOfWeekIsWildcard else { return false }
    let longest = [0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    for month in 1...12 where months & (1 << UInt64(month)) != 0 {
      let days = (UInt64(1) << UInt64(longest[month] + 1)) - 2  // bits 1…longest
      if daysOfMonth & days != 0 { return false }
    }
    return true
  }

  static func value(_ s: Substring, _ f: Field) throws(ParseError) -> Int {
    if let n = Int(s) {
      guard n >= f.min, n <= f.max else {
        throw ParseError(message: "\(f.name) value \(n) is out of range \(f.min)–\(f.max)")
      }
      return n
    }
    let lower = s.lowercased()
    if let i = f.names.firstIndex(of: lower) {
      return f.name == "month" ? i + 1 : i
    }
    if f.names.isEmpty {
      throw ParseError(message: "invalid \(f.name) value '\(s)' (expected a number \(f.min)–\(f.max))")
    }
    throw ParseError(message: "invalid \(f.name) value '\(s)' (expected \(f.min)–\(f.max) or a name: \(f.names.joined(separator: ", ")))")
  }
}
