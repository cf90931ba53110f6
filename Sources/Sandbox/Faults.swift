import Foundation

/// One injected behaviour.
public enum FaultAction: Sendable, Equatable, Codable {
  /// Sleep before answering: fixed when min == max, else uniform in [min, max].
  case latency(minMs: Int, maxMs: Int)
  /// With probability `rate`, answer `status` with `reason` in the emulator's own error shape.
  case error(rate: Double, status: Int, reason: String)
  /// With probability `rate`, answer 429 with `Retry-After: seconds`.
  case throttle(rate: Double, retryAfter: Int)
  /// With probability `rate`, execute the request but cut the connection half-way through the body.
  case reset(rate: Double)
  /// With probability `rate`, answer as the API does when its quota is exhausted.
  case quota(rate: Double)
}

/// A fault rule: which requests it matches and what it does.
public struct FaultRule: Sendable, Equatable, Codable {
  public var emulator: Emulator?  // nil = any
  public var method: String?  // nil = any
  public var pathGlob: String  // `*` matches any run of characters
  public var actions: [FaultAction]
  /// `TARGET#N=…`: the rule answers (error, throttle, reset, quota) for N requests, then never again.
  public var limit: Int? = nil

  func matches(_ e: Emulator, _ method: String, _ path: String) -> Bool {
    if let emulator, emulator != e { return false }
    if let m = self.method, m != method { return false }
    return FaultRule.glob(pathGlob, path)
  }

  static func glob(_ pattern: String, _ s: String) -> Bool {
    let p = Array(pattern.utf8)
    let t = Array(s.utf8)
    var pi = 0
    var ti = 0
    var star = -1
    var mark = 0
    while ti < t.count {
      if pi < p.count && p[pi] == UInt8(ascii: "*") {
        star = pi
        mark = ti
        pi += 1
      } else if pi < p.count && p[pi] == t[ti] {
        pi += 1
        ti += 1
      } else if star >= 0 {
        pi = star + 1
        mark += 1
        ti = mark
      } else {
        return false
      }
    }
    while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
    return pi == p.count
  }
}

public struct FaultSpecError: Error, CustomStringConvertible, Equatable {
  public var description: String
}

/// The `--faults` syntax (docs/sandbox.md):
///
///     SPEC   := RULE (';' RULE)*
///     RULE   := TARGET '=' ACTION (',' ACTION)*
///     TARGET := EMULATOR [':' [METHOD ' '] PATH-GLOB] ['#' N]  EMULATOR: youtube|oauth|n8n|cloudflare|vault|github|slack|hooks|*
///                                                              #N: the rule fails N requests, then no more
///     ACTION := latency:DUR[-DUR] | error:RATE[:STATUS[:REASON]] | throttle:RATE[:SECONDS] | 429:RATE[:SECONDS]
///             | reset[:RATE] | quota[:RATE]
public enum FaultSpec {
  public static func parse(_ spec: String) throws(FaultSpecError) -> [FaultRule] {
    var rules: [FaultRule] = []
    for raw in spec.split(separator: ";") {
      let rule = raw.trimmingCharacters(in: .whitespaces)
      if rule.isEmpty { continue }
      guard let eq = rule.firstIndex(of: "=") else {
        throw FaultSpecError(description: "fault rule '\(rule)' has no '=': expected TARGET=ACTION")
      }
      var target = String(rule[..<eq]).trimmingCharacters(in: .whitespaces)
      let actionsText = String(rule[rule.index(after: eq)...])
      var limit: Int?
      if let hash = target.lastIndex(of: "#") {
        guard let n = Int(target[target.index(after: hash)...]), n >= 1, n <= 1_000_000 else {
          throw FaultSpecError(description: "fault rule '\(rule)': '#N' must be a count from 1 to 1000000")
        }
        limit = n
        target = String(target[..<hash]).trimmingCharacters(in: .whitespaces)
      }
      var emulatorName = target
      var route = "*"
      if let colon = target.firstIndex(of: ":") {
        emulatorName = String(target[..<colon])
        route = String(target[target.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
      }
      var emulator: Emulator?
      if emulatorName != "*" {
        guard let e = Emulator(rawValue: emulatorName) else {
          throw FaultSpecError(
            description:
              "unknown emulator '\(emulatorName)' in fault rule '\(rule)'; expected one of \(Emulator.allCases.map(\.rawValue).joined(separator: ", ")) or *"
          )
        }
        emulator = e
      }
      var method: String?
      if let sp = route.firstIndex(of: " ") {
        method = String(route[..<sp]).uppercased()
        route = String(route[route.index(after: sp)...]).trimmingCharacters(in: .whitespaces)
      }
      if route.isEmpty { route = "*" }
      guard route == "*" || route.hasPrefix("/") else {
        throw FaultSpecError(description: "route '\(route)' in fault rule '\(rule)' must start with '/' or be '*'")
      }
      var actions: [FaultAction] = []
      for a in actionsText.split(separator: ",") {
        actions.append(try parseAction(a.trimmingCharacters(in: .whitespaces), rule: rule))
      }
      if actions.isEmpty { throw FaultSpecError(description: "fault rule '\(rule)' has no action") }
      rules.append(FaultRule(emulator: emulator, method: method, pathGlob: route, actions: actions, limit: limit))
    }
    return rules
  }

  static func rate(_ s: Substring?, _ rule: String) throws(FaultSpecError) -> Double {
    guard let s else { return 1 }
    guard let r = Double(s), r >= 0, r <= 1 else {
      throw FaultSpecError(description: "rate '\(s)' in fault rule '\(rule)' must be a number from 0 to 1")
    }
    return r
  }

  static func millis(_ s: Substring, _ rule: String) throws(FaultSpecError) -> Int {
    let units: [(String, Double)] = [("ms", 1), ("s", 1000), ("m", 60000)]
    for (u, f) in units where s.hasSuffix(u) {
      if let v = Double(s.dropLast(u.count)), v >= 0, v <= 600_000 / f { return Int(v * f) }
    }
    throw FaultSpecError(description: "duration '\(s)' in fault rule '\(rule)' must be a number with ms, s or m (at most 10m)")
  }

  static func parseAction(_ a: String, rule: String) throws(FaultSpecError) -> FaultAction {
    let p = a.split(separator: ":", omittingEmptySubsequences: false)
    switch p[0] {
    case "latency":
      guard p.count == 2 else {
        throw FaultSpecError(description: "latency in '\(rule)' needs a duration, e.g. latency:200ms or latency:50ms-2s")
      }
      let range = p[1].split(separator: "-")
      guard range.count == 1 || range.count == 2 else {
        throw FaultSpecError(description: "latency '\(p[1])' in '\(rule)': expected DUR or DUR-DUR")
      }
      let lo = try millis(range[0], rule)
      let hi = range.count == 2 ? try millis(range[1], rule) : lo
      guard hi >= lo else { throw FaultSpecError(description: "latency range '\(p[1])' in '\(rule)' is reversed") }
      return .latency(minMs: lo, maxMs: hi)
    case "error":
      guard p.count >= 2, p.count <= 4 else {
        throw FaultSpecError(description: "error in '\(rule)': expected error:RATE[:STATUS[:REASON]]")
      }
      let status = p.count >= 3 ? Int(p[2]) : 503
      guard let status, (400...599).contains(status) else {
        throw FaultSpecError(description: "status '\(p[2])' in '\(rule)' must be 400-599")
      }
      return .error(rate: try rate(p[1], rule), status: status, reason: p.count == 4 ? String(p[3]) : "backendError")
    case "throttle", "429":
      guard p.count <= 3 else { throw FaultSpecError(description: "throttle in '\(rule)': expected throttle:RATE[:SECONDS]") }
      let secs = p.count == 3 ? Int(p[2]) : 30
      guard let secs, (0...InputLimits.maxRetryAfter).contains(secs) else {
        throw FaultSpecError(description: "Retry-After '\(p[2])' in '\(rule)' must be whole seconds from 0 to \(InputLimits.maxRetryAfter)")
      }
      return .throttle(rate: try rate(p.count >= 2 ? p[1] : nil, rule), retryAfter: secs)
    case "reset":
      guard p.count <= 2 else { throw FaultSpecError(description: "reset in '\(rule)': expected reset[:RATE]") }
      return .reset(rate: try rate(p.count == 2 ? p[1] : nil, rule))
    case "quota":
      guard p.count <= 2 else { throw FaultSpecError(description: "quota in '\(rule)': expected quota[:RATE]") }
      return .quota(rate: try rate(p.count == 2 ? p[1] : nil, rule))
    default:
      throw FaultSpecError(description: "unknown fault '\(p[0])' in '\(rule)'; expected latency, error, throttle (429), reset or quota")
    }
  }
}

/// What the fault engine decided for one request.
struct FaultDecision: Sendable {
  var delayMs = 0
  var answer: SandboxResponse?
  var reset = false
}

/// Rules plus their random streams; deterministic for a seed and a request order.
struct FaultEngine: Sendable {
  var rules: [FaultRule] = []
  var seed: UInt64 = 0
  var rngs: [SplitMix64] = []
  /// What is left of each rule's `#N` (nil: no limit).
  var remaining: [Int?] = []

  mutating func set(_ rules: [FaultRule], seed: UInt64? = nil) {
    if let seed { self.seed = seed }
    self.rules = rules
    rngs = rules.indices.map { SplitMix64(seed: self.seed &+ UInt64($0) &* 0x9E37_79B9) }
    remaining = rules.map(\.limit)
  }

  mutating func decide(_ e: Emulator, _ r: SandboxRequest) -> FaultDecision {
    var d = FaultDecision()
    for i in rules.indices where rules[i].matches(e, r.method, r.path) && remaining[i] != 0 {
      let before = (d.answer != nil, d.reset)
      defer {
        if let n = remaining[i], (d.answer != nil, d.reset) != before { remaining[i] = n - 1 }
      }
      for a in rules[i].actions {
        switch a {
        case .latency(let lo, let hi):
          d.delayMs += lo == hi ? lo : lo + Int(rngs[i].unit() * Double(hi - lo + 1))
        case .error(let rate, let status, let reason):
          if d.answer == nil && !d.reset && rngs[i].unit() < rate { d.answer = FaultEngine.error(e, status, reason) }
        case .throttle(let rate, let secs):
          if d.answer == nil && !d.reset && rngs[i].unit() < rate { d.answer = FaultEngine.throttle(e, secs) }
        case .reset(let rate):
          if d.answer == nil && !d.reset && rngs[i].unit() < rate { d.reset = true }
        case .quota(let rate):
          if d.answer == nil && !d.reset && rngs[i].unit() < rate { d.answer = FaultEngine.quota(e) }
        }
      }
    }
    return d
  }

  static func error(_ e: Emulator, _ status: Int, _ reason: String) -> SandboxResponse {
    let message = "Injected fault: \(reason)"
    switch e {
    case .youtube:
      let domain =
        switch reason {
        case "quotaExceeded", "rateLimitExceeded": "youtube.quota"
        case "userRateLimitExceeded", "dailyLimitExceeded": "usageLimits"
        default: "global"
        }
      return YouTubeEmulator.error(status, reason, message, domain: domain)
    case .oauth: return .json(status, ["error": .string(reason), "error_description": .string(message)])
    case .n8n: return N8nEmulator.msg(status, message)
    case .cloudflare: return CloudflareEmulator.failure(status, 10000 + status, message)
    case .vault: return VaultEmulator.errors(status, [message])
    case .github: return .json(status, ["message": .string(message), "documentation_url": "https://docs.github.com/rest"])
    case .slack: return SandboxResponse(status: status, headers: [("Content-Type", "text/plain")], body: Array(reason.utf8))
    case .hooks: return .json(status, ["error": .string(message)])
    }
  }

  static func throttle(_ e: Emulator, _ secs: Int) -> SandboxResponse {
    var r: SandboxResponse
    switch e {
    case .youtube:
      r = YouTubeEmulator.error(
        429, "rateLimitExceeded", "The request cannot be completed because you have exceeded your quota per minute.",
        domain: "youtube.quota")
    case .oauth: r = .json(429, ["error": "rate_limit_exceeded", "error_description": "Rate Limit Exceeded"])
    case .n8n: r = N8nEmulator.msg(429, "Too Many Requests")
    case .cloudflare: r = CloudflareEmulator.failure(429, 971, "Please wait and consider throttling your request speed")
    case .vault: r = VaultEmulator.errors(429, ["request path \"\": rate limit quota exceeded"])
    case .github:
      r = .json(429, ["message": "You have exceeded a secondary rate limit.", "documentation_url": "https://docs.github.com/rest"])
    case .slack: r = SandboxResponse(status: 429, headers: [("Content-Type", "text/plain")], body: Array("rate_limited".utf8))
    case .hooks: r = .json(429, ["error": "Too Many Requests"])
    }
    r.headers.append(("Retry-After", String(secs)))
    return r
  }

  static func quota(_ e: Emulator) -> SandboxResponse {
    switch e {
    case .youtube: return YouTubeEmulator.quotaExceeded()
    case .cloudflare: return CloudflareEmulator.rateLimited(retryAfter: 300)
    default: return throttle(e, 60)
    }
  }
}
