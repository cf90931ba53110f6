import Foundation
import Synchronization

/// One HTTP request as the emulators see it (framework-independent, so handlers are pure).
public struct SandboxRequest: Sendable {
  public var method: String
  public var path: String
  public var query: [(name: String, value: String)]
  /// Header names lowercased; a repeated header keeps its first value.
  public var headers: [String: String]
  public var body: [UInt8]

  public init(method: String, path: String, rawQuery: String?, headers: [String: String], body: [UInt8]) {
    self.method = method.uppercased()
    self.path = path
    self.query = SandboxRequest.parseForm(rawQuery ?? "")
    self.headers = headers
    self.body = body
  }

  func q(_ name: String) -> String? { query.first { $0.name == name }?.value }

  var json: JSON? { JSON.parse(body) }

  /// application/x-www-form-urlencoded (also the query string).
  static func parseForm(_ s: String) -> [(name: String, value: String)] {
    guard !s.isEmpty else { return [] }
    return s.split(separator: "&", omittingEmptySubsequences: true).map { pair in
      let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
      func dec(_ x: Substring) -> String {
        let plus = x.replacingOccurrences(of: "+", with: " ")
        return plus.removingPercentEncoding ?? plus
      }
      return (dec(parts[0]), parts.count > 1 ? dec(parts[1]) : "")
    }
  }
}

/// One HTTP response; `cutAfter` makes the server drop the connection after that many body bytes.
public struct SandboxResponse: Sendable {
  public var status: Int
  public var headers: [(String, String)]
  public var body: [UInt8]
  var cutAfter: Int? = nil

  init(status: Int, headers: [(String, String)] = [], body: [UInt8] = []) {
    self.status = status
    self.headers = headers
    self.body = body
  }

  static func json(_ status: Int, _ j: JSON, headers: [(String, String)] = []) -> SandboxResponse {
    SandboxResponse(status: status, headers: [("Content-Type", "application/json; charset=utf-8")] + headers, body: j.bytes)
  }

  static func empty(_ status: Int) -> SandboxResponse { SandboxResponse(status: status) }
}

/// The emulated services, by their URL prefix on the shared listener (DESIGN A9).
public enum Emulator: String, Sendable, CaseIterable, Codable {
  case youtube, oauth, n8n, cloudflare, vault, github, slack, hooks

  static func of(path: String) -> Emulator? {
    if path == "/youtube/v3" || path.hasPrefix("/youtube/v3/") { return .youtube }
    if path == "/token" { return .oauth }
    if path == "/api/v1" || path.hasPrefix("/api/v1/") { return .n8n }
    if path == "/client/v4" || path.hasPrefix("/client/v4/") { return .cloudflare }
    if path == "/v1" || path.hasPrefix("/v1/") { return .vault }
    if path.hasPrefix("/github/") { return .github }
    if path.hasPrefix("/slack/") { return .slack }
    if path.hasPrefix("/hooks/") { return .hooks }
    return nil
  }
}

/// The sandbox clock: a base source (real time by default) plus an offset the admin API and
/// tests can advance, so quota resets and blocks can be tested without waiting.
public final class SandboxClock: Sendable {
  private let base: @Sendable () -> Date
  private let offset = Mutex<TimeInterval>(0)

  public init(_ base: @escaping @Sendable () -> Date = { Date() }) { self.base = base }

  public var now: Date { base().addingTimeInterval(offset.withLock { $0 }) }

  public func advance(by seconds: TimeInterval) { offset.withLock { $0 += seconds } }

  /// Advances unless the total offset would pass `limit` (either way); false when refused.
  public func advance(by seconds: TimeInterval, limit: TimeInterval) -> Bool {
    offset.withLock { o in
      let next = o + seconds
      guard next.isFinite, abs(next) <= limit else { return false }
      o = next
      return true
    }
  }
}

/// The ranges of the integers clients send (query parameters, admin bodies, cursors), checked
/// where they are parsed so that arithmetic on them cannot overflow; out of range is a 400.
enum InputLimits {
  /// Cloudflare `page`.
  static let maxPage = 1_000_000
  /// n8n cursor offsets.
  static let maxOffset = 100_000_000
  /// `POST /_sandbox/clock` advanceSeconds, and the clock's total offset: 100 years.
  static let maxClockAdvance = 3_155_760_000
  /// `PUT /_sandbox/quota` youtube used, limit and costs.
  static let maxQuotaUnits = 1_000_000_000_000
  /// `PUT /_sandbox/quota` cloudflare limit.
  static let maxRequestLimit = 1_000_000_000
  /// `PUT /_sandbox/quota` cloudflare windowSeconds and blockSeconds: one year.
  static let maxWindowSeconds = 31_536_000
  /// Faults' throttle Retry-After seconds: one day.
  static let maxRetryAfter = 86_400
}

/// SplitMix64: small, fast, deterministic for a given seed.
struct SplitMix64: Sendable, Codable {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
  /// Uniform in [0, 1).
  mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}

enum Ident {
  static func fnv(_ s: String) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    return h
  }

  static let alnum = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
  static let urlsafe = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
  static let hex = Array("0123456789abcdef")

  /// A deterministic identifier derived from `seed`.
  static func make(_ seed: String, length: Int, alphabet: [Character] = alnum) -> String {
    var rng = SplitMix64(seed: fnv(seed))
    var s = ""
    for _ in 0..<length { s.append(alphabet[Int(rng.next() % UInt64(alphabet.count))]) }
    return s
  }

  static func uuid(_ seed: String) -> String {
    let h = make(seed, length: 32, alphabet: hex)
    let c = Array(h)
    return "\(String(c[0..<8]))-\(String(c[8..<12]))-\(String(c[12..<16]))-\(String(c[16..<20]))-\(String(c[20..<32]))"
  }

  static func etag(_ j: JSON) -> String { make(j.serialized, length: 27, alphabet: urlsafe) }
}

enum Timestamp {
  /// RFC 3339 UTC with `digits` fractional digits (0 = none).
  static func rfc3339(_ d: Date, digits: Int) -> String {
    let t = d.timeIntervalSince1970
    let secs = Int(t.rounded(.down))
    var tmv = tm()
    var tt = time_t(secs)
    gmtime_r(&tt, &tmv)
    var s = String(
      format: "%04d-%02d-%02dT%02d:%02d:%02d", Int(tmv.tm_year) + 1900, Int(tmv.tm_mon) + 1, Int(tmv.tm_mday),
      Int(tmv.tm_hour), Int(tmv.tm_min), Int(tmv.tm_sec))
    if digits > 0 {
      let frac = t - Double(secs)
      var n = Int((frac * pow(10, Double(digits))).rounded(.down))
      n = max(0, min(n, Int(pow(10, Double(digits))) - 1))
      s += "." + String(format: "%0\(digits)d", n)
    }
    return s + "Z"
  }

  /// Without tzdata, fall back to PST (UTC-8) rather than fail.
  static let pacific = TimeZone(identifier: "America/Los_Angeles") ?? TimeZone(secondsFromGMT: -8 * 3600) ?? .gmt

  /// The quota day in Pacific time, e.g. "2026-11-25".
  static func pacificDay(_ d: Date) -> String {
    var cal = Calendar(identifier: .gregorian)
    cal.timeZone = pacific
    let c = cal.dateComponents([.year, .month, .day], from: d)
    return String(format: "%04d-%02d-%02d", c.year!, c.month!, c.day!)
  }

  /// The next midnight in Pacific time after `d`.
  static func nextPacificMidnight(after d: Date) -> Date {
    var cal = Calendar(identifier: .gregorian)
    cal.timeZone = pacific
    let start = cal.startOfDay(for: d)
    return cal.date(byAdding: .day, value: 1, to: start) ?? d.addingTimeInterval(86400)
  }
}
