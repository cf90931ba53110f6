import YAMLKit

public enum ErrorCategory: String, Sendable, CaseIterable, Codable {
  case rateLimit = "rate_limit"
  case apiError = "api_error"
  case networkError = "network_error"
  case validationError = "validation_error"
  case quotaExceeded = "quota_exceeded"
}

public enum RetryStrategy: String, Sendable, CaseIterable, Codable {
  case exponential, linear, none, scheduled
}

public enum FallbackAction: String, Sendable, CaseIterable, Codable {
  case queueForLater = "queue_for_later"
  case useAlternativeService = "use_alternative_service"
  case circuitBreaker = "circuit_breaker"
  case logAndSkip = "log_and_skip"
  case fail
}

public struct RateLimitSpec: Sendable {
  public enum Window: String, Sendable, CaseIterable { case daily, monthly }
  public struct Quota: Sendable {
    public var units: Int
    public var window: Window
    /// Minutes after midnight.
    public var resetAt: Int
    public var timezone: String
    public var costs: [String: Int]
    public var reservedPerChannel: Int?
    public var emergencyReserve: Int?
    public var predictive: Bool
    public var mark: SourceMark
  }
  public struct Requests: Sendable, Equatable {
    public var perSecond: Int?, perMinute: Int?, per5Minutes: Int?, perHour: Int?, perDay: Int?
    public init(perSecond: Int? = nil, perMinute: Int? = nil, per5Minutes: Int? = nil, perHour: Int? = nil, perDay: Int? = nil) {
      self.perSecond = perSecond
      self.perMinute = perMinute
      self.per5Minutes = per5Minutes
      self.perHour = perHour
      self.perDay = perDay
    }
  }
  public struct Tokens: Sendable, Equatable { public var perMinute: Int?, perDay: Int? }
  public struct Characters: Sendable, Equatable { public var perMinute: Int?, perMonth: Int? }
  public enum RetryAfter: Sendable, Equatable {
    case nextQuotaReset
    case after(ModelDuration)
  }
  public struct Category: Sendable {
    /// The seed's ErrorHandler table; a category written in a manifest overrides these field by field.
    public static let seedDefaults: [ErrorCategory: Category] = [
      .rateLimit: .init(strategy: .exponential, maxRetries: 5, baseDelay: .seconds(60), retryAfter: nil, fallback: .queueForLater),
      .apiError: .init(strategy: .exponential, maxRetries: 3, baseDelay: .seconds(5), retryAfter: nil, fallback: .useAlternativeService),
      .networkError: .init(strategy: .linear, maxRetries: 5, baseDelay: .seconds(2), retryAfter: nil, fallback: .circuitBreaker),
      .validationError: .init(strategy: .none, maxRetries: 0, baseDelay: nil, retryAfter: nil, fallback: .logAndSkip),
      .quotaExceeded: .init(
        strategy: .scheduled, maxRetries: nil, baseDelay: nil, retryAfter: .nextQuotaReset, fallback: .useAlternativeService),
    ]
    public var strategy: RetryStrategy
    public var maxRetries: Int?
    public var baseDelay: ModelDuration?
    public var retryAfter: RetryAfter?
    public var fallback: FallbackAction?
    public init(
      strategy: RetryStrategy, maxRetries: Int?, baseDelay: ModelDuration?, retryAfter: RetryAfter?, fallback: FallbackAction?
    ) {
      self.strategy = strategy
      self.maxRetries = maxRetries
      self.baseDelay = baseDelay
      self.retryAfter = retryAfter
      self.fallback = fallback
    }
  }
  public struct Retry: Sendable {
    public var maxRetries: Int?
    public var initialDelay: ModelDuration?
    public var maxDelay: ModelDuration?
    public var deadline: ModelDuration?
    public var multiplier: Double?
    public var jitter: Bool?
    public var retryOnStatuses: [Int]?
    public var retryOnReasons: [String]?
    public var categories: [ErrorCategory: Category]
  }
  public struct CircuitBreaker: Sendable {
    public var failureThreshold: Int?
    public var successThreshold: Int?
    public var timeout: ModelDuration?
    public var halfOpenRequests: Int?
    public var monitoredErrors: [String]?
  }
  public struct Adaptive: Sendable {
    public var enabled: Bool
    public var maxFactor: Double?
    public var baseDelay: ModelDuration?
    public var decayFactor: Double?
    public var degradeFactor: Double?
    public var degradeMaxFactor: Double?
    public var healthySuccessRate: Double?
    public var healthyLatency: ModelDuration?
    public var degradedSuccessRate: Double?
    public var degradedLatency: ModelDuration?
  }
  public struct Batch: Sendable {
    public var maxSize: Int?
    public var window: ModelDuration?
  }
  public struct Cache: Sendable {
    public var maxEntries: Int?
    public var ttl: ModelDuration?
  }
  public struct Upload: Sendable {
    public var chunkSize: Int?
    public var maxRetriesPerChunk: Int?
    public var concurrency: Int?
    public var timeout: ModelDuration?
  }
  public struct Global: Sendable {
    public var callsPerMinute: Int?
    public var bandwidthMbps: Double?
    public var videoUploads: Int?, aiGenerations: Int?, apiRequests: Int?
  }

  public var service: String
  public var quota: Quota?
  public var requests: Requests?
  public var tokens: Tokens?
  public var characters: Characters?
  public var concurrency: Int?
  public var retry: Retry?
  public var circuitBreaker: CircuitBreaker?
  public var adaptive: Adaptive?
  public var batch: Batch?
  public var cache: Cache?
  public var upload: Upload?
  public var global: Global?
}

extension NodeDecoder {
  func rateLimitSpec(_ node: YAMLNode, _ path: String) -> RateLimitSpec? {
    guard
      let f = mapping(
        node, path,
        known: [
          "service", "quota", "requests", "tokens", "characters", "concurrency", "retry",
          "circuitBreaker", "adaptive", "batch", "cache", "upload", "global",
        ])
    else { return nil }
    requireFields(f, ["service"])
    let service = pattern(
      f, "service", what: "a service name such as youtube, openai or global (lowercase letters, digits, '-')", Names.isServiceName)

    var quota: RateLimitSpec.Quota?
    if let qn = f.value("quota"),
      let q = mapping(
        qn, f.sub("quota"),
        known: [
          "units", "window", "resetAt", "timezone", "costs",
          "reservedPerChannel", "emergencyReserve", "predictive",
        ])
    {
      requireFields(q, ["units"])
      let units = int(q, "units", min: 1)
      let window = enumeration(q, "window", RateLimitSpec.Window.self) ?? .daily
      var resetAt = 0
      if let rn = q.value("resetAt"), let s = string(rn, q.sub("resetAt")) {
        if let m = Self.clockMinutes(s) {
          resetAt = m
        } else {
          diags.error(
            .invalidValue, "\(q.sub("resetAt")) '\(s)' is not a time of day HH:MM (00:00–23:59); quote it: resetAt: \"00:00\"", at: rn.mark)
        }
      }
      let tz = timezone(q, "timezone") ?? "UTC"
      var costs: [String: Int] = [:]
      if let cn = q.value("costs"), let es = entries(cn, q.sub("costs")) {
        for e in es {
          let parts = e.key.split(separator: ".", omittingEmptySubsequences: false)
          guard parts.count == 2, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isLetter } }) else {
            diags.error(
              .invalidValue, "cost key '\(e.key)' in \(q.sub("costs")) must be resource.method, such as videos.insert", at: e.mark)
            continue
          }
          if let v = int(e.value, "\(q.sub("costs")).\(e.key)", min: 0) { costs[e.key] = v }
        }
      }
      let reserved = int(q, "reservedPerChannel", min: 0)
      let emergency = int(q, "emergencyReserve", min: 0)
      let predictive = bool(q, "predictive") ?? false
      if let units {
        if let e = emergency, e > units {
          diags.error(
            .outOfRange, "\(q.sub("emergencyReserve")) (\(e)) is larger than the quota (\(units) units)",
            at: q.value("emergencyReserve")!.mark)
        }
        for (k, v) in costs where v > units {
          diags.warning(
            .outOfRange, "\(q.sub("costs")).\(k) costs \(v) units, more than the whole quota (\(units)); that call can never be made",
            at: q.keyMark("costs")!)
        }
        quota = .init(
          units: units, window: window, resetAt: resetAt, timezone: tz, costs: costs, reservedPerChannel: reserved,
          emergencyReserve: emergency, predictive: predictive, mark: qn.mark)
      }
    }

    var requests: RateLimitSpec.Requests?
    if let n = f.value("requests"),
      let r = mapping(n, f.sub("requests"), known: ["perSecond", "perMinute", "per5Minutes", "perHour", "perDay"])
    {
      requests = .init(
        perSecond: int(r, "perSecond", min: 1), perMinute: int(r, "perMinute", min: 1), per5Minutes: int(r, "per5Minutes", min: 1),
        perHour: int(r, "perHour", min: 1), perDay: int(r, "perDay", min: 1))
    }
    var tokens: RateLimitSpec.Tokens?
    if let n = f.value("tokens"), let t = mapping(n, f.sub("tokens"), known: ["perMinute", "perDay"]) {
      tokens = .init(perMinute: int(t, "perMinute", min: 1), perDay: int(t, "perDay", min: 1))
    }
    var characters: RateLimitSpec.Characters?
    if let n = f.value("characters"), let c = mapping(n, f.sub("characters"), known: ["perMinute", "perMonth"]) {
      characters = .init(perMinute: int(c, "perMinute", min: 1), perMonth: int(c, "perMonth", min: 1))
    }
    let concurrency = int(f, "concurrency", min: 1)

    var retry: RateLimitSpec.Retry?
    if let n = f.value("retry"),
      let r = mapping(
        n, f.sub("retry"),
        known: [
          "maxRetries", "initialDelay", "maxDelay", "deadline", "multiplier",
          "jitter", "retryOn", "categories",
        ])
    {
      var statuses: [Int]?
      var reasons: [String]?
      if let on = r.value("retryOn"), let ro = mapping(on, r.sub("retryOn"), known: ["statuses", "reasons"]) {
        if let items = list(ro, "statuses") { statuses = items.compactMap { int($0.node, $0.path, min: 100, max: 599) } }
        reasons = stringList(ro, "reasons", maxLength: 100)
      }
      var categories: [ErrorCategory: RateLimitSpec.Category] = [:]
      if let cn = r.value("categories"), let c = mapping(cn, r.sub("categories"), known: ErrorCategory.allCases.map(\.rawValue)) {
        for cat in ErrorCategory.allCases {
          guard let v = c.value(cat.rawValue),
            let m = mapping(v, c.sub(cat.rawValue), known: ["strategy", "maxRetries", "baseDelay", "retryAfter", "fallback"])
          else { continue }
          var retryAfter: RateLimitSpec.RetryAfter?
          if let ra = m.value("retryAfter"), let s = string(ra, m.sub("retryAfter")) {
            if s == "next_quota_reset" {
              retryAfter = .nextQuotaReset
            } else if let d = ModelDuration.parse(s) {
              retryAfter = .after(d)
            } else if ModelDuration.check(s) == .tooLarge {
              durationTooLarge(m.sub("retryAfter"), s, at: ra.mark)
            } else {
              diags.error(
                .invalidValue, "\(m.sub("retryAfter")) '\(clip(s))' must be next_quota_reset or a duration such as 30m", at: ra.mark)
            }
          }
          let strategy =
            enumeration(m, "strategy", RetryStrategy.self) ?? (m.has("strategy") ? nil : RateLimitSpec.Category.seedDefaults[cat]!.strategy)
          let maxRetries = int(m, "maxRetries", min: 0)
          let baseDelay = duration(m, "baseDelay")
          let fallback = enumeration(m, "fallback", FallbackAction.self)
          let defaults = RateLimitSpec.Category.seedDefaults[cat]!
          if m.has("strategy"), strategy == .scheduled, retryAfter == nil, m.value("retryAfter") == nil, defaults.retryAfter == nil {
            diags.error(.missingField, "\(m.path) uses strategy scheduled and needs 'retryAfter'", at: v.mark)
          }
          if m.has("strategy"), let strategy, strategy == .exponential || strategy == .linear, baseDelay == nil,
            m.value("baseDelay") == nil, defaults.baseDelay == nil
          {
            diags.error(.missingField, "\(m.path) uses strategy \(strategy.rawValue) and needs 'baseDelay'", at: v.mark)
          }
          if let strategy {
            categories[cat] = .init(
              strategy: strategy, maxRetries: maxRetries ?? defaults.maxRetries, baseDelay: baseDelay ?? defaults.baseDelay,
              retryAfter: retryAfter ?? defaults.retryAfter, fallback: fallback ?? defaults.fallback)
          }
        }
      }
      let initial = duration(r, "initialDelay")
      let maxDelay = duration(r, "maxDelay")
      if let i = initial, let m = maxDelay, i > m {
        diags.error(.outOfRange, "\(r.sub("initialDelay")) (\(i)) is longer than maxDelay (\(m))", at: r.value("initialDelay")!.mark)
      }
      retry = .init(
        maxRetries: int(r, "maxRetries", min: 0, max: 100), initialDelay: initial, maxDelay: maxDelay,
        deadline: duration(r, "deadline"), multiplier: number(r, "multiplier", min: 1, max: 100),
        jitter: bool(r, "jitter"), retryOnStatuses: statuses, retryOnReasons: reasons, categories: categories)
    }

    var breaker: RateLimitSpec.CircuitBreaker?
    if let n = f.value("circuitBreaker"),
      let b = mapping(
        n, f.sub("circuitBreaker"),
        known: [
          "failureThreshold", "successThreshold", "timeout",
          "halfOpenRequests", "monitoredErrors",
        ])
    {
      breaker = .init(
        failureThreshold: int(b, "failureThreshold", min: 1), successThreshold: int(b, "successThreshold", min: 1),
        timeout: duration(b, "timeout"), halfOpenRequests: int(b, "halfOpenRequests", min: 1),
        monitoredErrors: stringList(b, "monitoredErrors") {
          Names.isIdentifier($0) ? nil : "must be an error identifier such as quota_exceeded"
        })
    }

    var adaptive: RateLimitSpec.Adaptive?
    if let n = f.value("adaptive"),
      let a = mapping(
        n, f.sub("adaptive"),
        known: [
          "enabled", "maxFactor", "baseDelay", "decayFactor", "degradeFactor",
          "degradeMaxFactor", "healthySuccessRate", "healthyLatency",
          "degradedSuccessRate", "degradedLatency",
        ])
    {
      adaptive = .init(
        enabled: bool(a, "enabled") ?? true, maxFactor: number(a, "maxFactor", min: 1, max: 1000),
        baseDelay: duration(a, "baseDelay"), decayFactor: number(a, "decayFactor", min: 0, max: 1),
        degradeFactor: number(a, "degradeFactor", min: 1, max: 100), degradeMaxFactor: number(a, "degradeMaxFactor", min: 1, max: 1000),
        healthySuccessRate: number(a, "healthySuccessRate", min: 0, max: 1), healthyLatency: duration(a, "healthyLatency"),
        degradedSuccessRate: number(a, "degradedSuccessRate", min: 0, max: 1), degradedLatency: duration(a, "degradedLatency"))
    }
    var batch: RateLimitSpec.Batch?
    if let n = f.value("batch"), let b = mapping(n, f.sub("batch"), known: ["maxSize", "window"]) {
      batch = .init(maxSize: int(b, "maxSize", min: 1), window: duration(b, "window"))
    }
    var cache: RateLimitSpec.Cache?
    if let n = f.value("cache"), let c = mapping(n, f.sub("cache"), known: ["maxEntries", "ttl"]) {
      cache = .init(maxEntries: int(c, "maxEntries", min: 1), ttl: duration(c, "ttl"))
    }
    var upload: RateLimitSpec.Upload?
    if let n = f.value("upload"), let u = mapping(n, f.sub("upload"), known: ["chunkSize", "maxRetriesPerChunk", "concurrency", "timeout"])
    {
      upload = .init(
        chunkSize: int(u, "chunkSize", min: 1), maxRetriesPerChunk: int(u, "maxRetriesPerChunk", min: 0),
        concurrency: int(u, "concurrency", min: 1), timeout: duration(u, "timeout"))
    }
    var global: RateLimitSpec.Global?
    if let n = f.value("global") {
      if let service, service != "global" {
        diags.error(
          .invalidValue, "\(f.sub("global")) is only allowed on the RateLimit with service: global (this one is for \(service))",
          at: f.keyMark("global")!)
      }
      if let g = mapping(n, f.sub("global"), known: ["callsPerMinute", "bandwidthMbps", "concurrency"]) {
        var up: Int?
        var ai: Int?
        var api: Int?
        if let cn = g.value("concurrency"),
          let c = mapping(cn, g.sub("concurrency"), known: ["videoUploads", "aiGenerations", "apiRequests"])
        {
          up = int(c, "videoUploads", min: 1)
          ai = int(c, "aiGenerations", min: 1)
          api = int(c, "apiRequests", min: 1)
        }
        global = .init(
          callsPerMinute: int(g, "callsPerMinute", min: 1),
          bandwidthMbps: number(g, "bandwidthMbps", min: 0, exclusiveMin: true),
          videoUploads: up, aiGenerations: ai, apiRequests: api)
      }
    }
    guard let service else { return nil }
    return RateLimitSpec(
      service: service, quota: quota, requests: requests, tokens: tokens, characters: characters, concurrency: concurrency,
      retry: retry, circuitBreaker: breaker, adaptive: adaptive, batch: batch, cache: cache, upload: upload, global: global)
  }

  /// "HH:MM" → minutes after midnight.
  static func clockMinutes(_ s: String) -> Int? {
    let p = s.split(separator: ":", omittingEmptySubsequences: false)
    guard p.count == 2, p[0].count == 2, p[1].count == 2, let h = Int(p[0]), let m = Int(p[1]), (0..<24).contains(h), (0..<60).contains(m)
    else { return nil }
    return h * 60 + m
  }
}
