import DriverKit
import EmpireModel

/// One row: column name → canonical value (key and value columns; never `managed_by` or `updated_at`).
typealias Row = [String: JSONValue]

enum Canonical {
  /// Integral doubles become integers and null members of objects are dropped, so that what
  /// was written compares equal to what is read back, whatever the column or JSON number type
  /// (PostgreSQL NUMERIC/DOUBLE PRECISION, SQLite REAL, Swift Double).
  static func normalize(_ v: JSONValue) -> JSONValue {
    switch v {
    case .double(let d):
      guard d.isFinite else { return .null }
      if d.rounded() == d && abs(d) < 9e15 { return .int(Int64(d)) }
      return .double(d)
    case .array(let a): return .array(a.map(normalize))
    case .object(let o):
      var out: [String: JSONValue] = [:]
      for (k, x) in o {
        let n = normalize(x)
        if n != .null { out[k] = n }
      }
      return .object(out)
    default: return v
    }
  }

  /// The value of a column as ytempire compares it.
  static func column(_ v: JSONValue?, _ type: ColumnType) -> JSONValue {
    guard let v, v != .null else { return .null }
    switch type {
    case .text: return v.string.map(JSONValue.string) ?? .string(v.canonicalString)
    case .bool:
      if let b = v.bool { return .bool(b) }
      if let i = v.int { return .bool(i != 0) }
      return v
    case .int, .double: return normalize(v)
    case .json: return normalize(v)
    }
  }

  static func row(_ r: Row, _ table: Table) -> Row {
    var out: Row = [:]
    for c in table.dataColumns {
      let v = column(r[c.name], c.type)
      if v != .null { out[c.name] = v }
    }
    return out
  }

  /// The key of a row inside its resource's part of a table: the resource name for one-row
  /// tables, the other key columns joined by `/` otherwise (names never contain `/`).
  static func rowKey(_ r: Row, _ table: Table) -> String {
    let cols = table.singleRow ? [table.owner] : table.keys
    return cols.map { r[$0]?.string ?? "" }.joined(separator: "/")
  }

  /// `{table: {rowKey: values}}` — the driver's canonical form of a resource's rows. `values`
  /// is the row without its key columns, or `true` for a table with nothing but keys.
  /// `includeEmpty` keeps tables without rows (the desired form names every table).
  static func state(_ rows: [String: [Row]], tables: [Table], includeEmpty: Bool) -> JSONValue {
    var out: [String: JSONValue] = [:]
    for t in tables {
      var m: [String: JSONValue] = [:]
      for r0 in rows[t.name] ?? [] {
        let r = row(r0, t)
        var values: [String: JSONValue] = [:]
        for c in t.values { if let v = r[c.name] { values[c.name] = v } }
        m[rowKey(r, t)] = values.isEmpty && t.values.isEmpty ? .bool(true) : .object(values)
      }
      if !m.isEmpty || includeEmpty { out[t.name] = .object(m) }
    }
    return out.isEmpty && !includeEmpty ? .null : .object(out)
  }

  /// The rows of a state written by `state` (for the resource `owner`).
  static func rows(_ state: JSONValue, tables: [Table], owner: String) -> [String: [Row]] {
    var out: [String: [Row]] = [:]
    for t in tables {
      guard let m = state[t.name]?.object else { continue }
      var rows: [Row] = []
      for k in m.keys.sorted() {
        var r: Row = [t.owner: .string(owner)]
        if !t.singleRow {
          let parts = k.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
          for (i, c) in t.keys.enumerated() where i < parts.count { r[c] = .string(parts[i]) }
        }
        if let values = m[k]?.object { for (c, v) in values { r[c] = v } }
        rows.append(row(r, t))
      }
      out[t.name] = rows
    }
    return out
  }
}

/// The rows a resource maps to. Only names of credentials ever appear (never a secret value:
/// resources carry none, and this driver is given none but its own connection password).
enum RowMapper {
  private struct Obj {
    var o: [String: JSONValue] = [:]
    subscript(_ k: String) -> JSONValue? {
      get { o[k] }
      set { if let v = newValue, v != .null { o[k] = v } }
    }
    var value: JSONValue { .object(o) }
  }

  private static func secs(_ d: ModelDuration?) -> JSONValue? { d.map { .double($0.seconds) } }
  private static func num(_ d: Double?) -> JSONValue? { d.map(JSONValue.double) }
  private static func int(_ i: Int?) -> JSONValue? { i.map { .int(Int64($0)) } }
  private static func str(_ s: String?) -> JSONValue? { s.map(JSONValue.string) }
  private static func bool(_ b: Bool?) -> JSONValue? { b.map(JSONValue.bool) }
  private static func strs(_ a: [String]?) -> JSONValue? { a.map { .array($0.map(JSONValue.string)) } }

  static func rows(_ r: Resource) -> [String: [Row]] {
    switch r.spec {
    case .channel(let c): return [Schema.channels.name: [channel(r, c)]]
    case .providerChain(let p): return [Schema.providerChains.name: [providerChain(r, p)]]
    case .rateLimit(let l): return [Schema.rateLimits.name: [rateLimit(r, l)]]
    case .securityPolicy(let s): return securityPolicy(r, s)
    default: return [:]
    }
  }

  static func channel(_ r: Resource, _ c: ChannelSpec) -> Row {
    var row = Obj()
    row["name"] = .string(r.name)
    row["youtube_channel_id"] = .string(c.youtube.channelId)
    row["active"] = .bool(c.active)
    row["title"] = .string(c.branding.title)
    row["niche"] = str(r.metadata.labels["niche"])
    row["labels"] = .object(r.metadata.labels.mapValues(JSONValue.string))
    row["quota_share"] = num(c.limits?.quotaShare)
    row["videos_per_day"] = int(c.limits?.videosPerDay)
    row["uploads_per_hour"] = int(c.limits?.uploadsPerHour)
    row["rate_limit"] = str(c.rateLimit?.name)
    if let content = c.content {
      var o = Obj()
      o["style"] = str(content.style)
      o["duration_seconds"] = secs(content.duration)
      o["voice"] = str(content.voice?.rawValue)
      o["visual_style"] = str(content.visualStyle)
      var providers = Obj()
      for (cap, ref) in content.providers { providers[cap.rawValue] = .string(ref.name) }
      o["providers"] = providers.value
      row["content"] = o.value
    }
    return Canonical.row(row.o, Schema.channels)
  }

  static func providerChain(_ r: Resource, _ p: ProviderChainSpec) -> Row {
    var row = Obj()
    row["name"] = .string(r.name)
    row["capability"] = .string(p.capability.rawValue)
    row["cache_ttl_seconds"] = secs(p.cacheTTL)
    if let d = p.defaults {
      var o = Obj()
      o["temperature"] = num(d.temperature)
      o["max_tokens"] = int(d.maxTokens)
      o["timeout_seconds"] = secs(d.timeout)
      row["defaults"] = o.value
    }
    if let a = p.audio {
      var o = Obj()
      o["sample_rate"] = int(a.sampleRate)
      o["bit_depth"] = int(a.bitDepth)
      o["channels"] = int(a.channels)
      o["format"] = str(a.format?.rawValue)
      o["bitrate"] = str(a.bitrate)
      o["max_chars_per_request"] = int(a.maxCharsPerRequest)
      row["audio"] = o.value
    }
    row["providers"] = .array(
      p.providers.enumerated().map { i, x in
        var o = Obj()
        o["position"] = .int(Int64(i))
        o["name"] = .string(x.name)
        o["model"] = str(x.model)
        o["endpoint"] = .string(x.endpoint)
        o["weight"] = .double(x.weight)
        o["credentials"] = str(x.credentials)  // the secret's NAME in the reconciler config
        o["rate_limit"] = str(x.rateLimit?.name)
        if let c = x.cost {
          var co = Obj()
          co["input_per_1k_tokens"] = num(c.inputPer1kTokens)
          co["output_per_1k_tokens"] = num(c.outputPer1kTokens)
          co["per_1k_chars"] = num(c.per1kChars)
          co["per_image"] = c.perImage.map { .object($0.mapValues(JSONValue.double)) }
          o["cost"] = co.value
        }
        if let v = x.voices {
          o["voices"] = .object(Dictionary(uniqueKeysWithValues: v.map { ($0.key.rawValue, JSONValue.string($0.value)) }))
        }
        if let h = x.healthCheck {
          var ho = Obj()
          ho["path"] = .string(h.path)
          ho["interval_seconds"] = secs(h.interval)
          o["health_check"] = ho.value
        }
        o["cache_ttl_seconds"] = secs(x.cacheTTL)
        o["timeout_seconds"] = secs(x.timeout)
        return o.value
      })
    return Canonical.row(row.o, Schema.providerChains)
  }

  static func rateLimit(_ r: Resource, _ l: RateLimitSpec) -> Row {
    var row = Obj()
    row["name"] = .string(r.name)
    row["service"] = .string(l.service)
    if let q = l.quota {
      var o = Obj()
      o["units"] = int(q.units)
      o["window"] = .string(q.window.rawValue)
      o["reset_at"] = .string(String(format2(q.resetAt / 60)) + ":" + format2(q.resetAt % 60))
      o["timezone"] = .string(q.timezone)
      o["costs"] = .object(q.costs.mapValues { .int(Int64($0)) })
      o["reserved_per_channel"] = int(q.reservedPerChannel)
      o["emergency_reserve"] = int(q.emergencyReserve)
      o["predictive"] = .bool(q.predictive)
      row["quota"] = o.value
    }
    if let q = l.requests {
      var o = Obj()
      o["per_second"] = int(q.perSecond)
      o["per_minute"] = int(q.perMinute)
      o["per_5_minutes"] = int(q.per5Minutes)
      o["per_hour"] = int(q.perHour)
      o["per_day"] = int(q.perDay)
      row["requests"] = o.value
    }
    if let t = l.tokens {
      var o = Obj()
      o["per_minute"] = int(t.perMinute)
      o["per_day"] = int(t.perDay)
      row["tokens"] = o.value
    }
    if let c = l.characters {
      var o = Obj()
      o["per_minute"] = int(c.perMinute)
      o["per_month"] = int(c.perMonth)
      row["characters"] = o.value
    }
    row["concurrency"] = int(l.concurrency)
    if let x = l.retry {
      var o = Obj()
      o["max_retries"] = int(x.maxRetries)
      o["initial_delay_seconds"] = secs(x.initialDelay)
      o["max_delay_seconds"] = secs(x.maxDelay)
      o["deadline_seconds"] = secs(x.deadline)
      o["multiplier"] = num(x.multiplier)
      o["jitter"] = bool(x.jitter)
      if x.retryOnStatuses != nil || x.retryOnReasons != nil {
        var on = Obj()
        on["statuses"] = x.retryOnStatuses.map { .array($0.map { .int(Int64($0)) }) }
        on["reasons"] = strs(x.retryOnReasons)
        o["retry_on"] = on.value
      }
      if !x.categories.isEmpty {
        var cats = Obj()
        for (k, c) in x.categories {
          var co = Obj()
          co["strategy"] = .string(c.strategy.rawValue)
          co["max_retries"] = int(c.maxRetries)
          co["base_delay_seconds"] = secs(c.baseDelay)
          switch c.retryAfter {
          case .nextQuotaReset?: co["retry_after"] = "next_quota_reset"
          case .after(let d)?: co["retry_after_seconds"] = secs(d)
          case nil: break
          }
          co["fallback"] = str(c.fallback?.rawValue)
          cats[k.rawValue] = co.value
        }
        o["categories"] = cats.value
      }
      row["retry"] = o.value
    }
    if let b = l.circuitBreaker {
      var o = Obj()
      o["failure_threshold"] = int(b.failureThreshold)
      o["success_threshold"] = int(b.successThreshold)
      o["timeout_seconds"] = secs(b.timeout)
      o["half_open_requests"] = int(b.halfOpenRequests)
      o["monitored_errors"] = strs(b.monitoredErrors)
      row["circuit_breaker"] = o.value
    }
    if let a = l.adaptive {
      var o = Obj()
      o["enabled"] = .bool(a.enabled)
      o["max_factor"] = num(a.maxFactor)
      o["base_delay_seconds"] = secs(a.baseDelay)
      o["decay_factor"] = num(a.decayFactor)
      o["degrade_factor"] = num(a.degradeFactor)
      o["degrade_max_factor"] = num(a.degradeMaxFactor)
      o["healthy_success_rate"] = num(a.healthySuccessRate)
      o["healthy_latency_seconds"] = secs(a.healthyLatency)
      o["degraded_success_rate"] = num(a.degradedSuccessRate)
      o["degraded_latency_seconds"] = secs(a.degradedLatency)
      row["adaptive"] = o.value
    }
    if let b = l.batch {
      var o = Obj()
      o["max_size"] = int(b.maxSize)
      o["window_seconds"] = secs(b.window)
      row["batch"] = o.value
    }
    if let c = l.cache {
      var o = Obj()
      o["max_entries"] = int(c.maxEntries)
      o["ttl_seconds"] = secs(c.ttl)
      row["cache"] = o.value
    }
    if let u = l.upload {
      var o = Obj()
      o["chunk_size"] = int(u.chunkSize)
      o["max_retries_per_chunk"] = int(u.maxRetriesPerChunk)
      o["concurrency"] = int(u.concurrency)
      o["timeout_seconds"] = secs(u.timeout)
      row["upload"] = o.value
    }
    if let g = l.global {
      var o = Obj()
      o["calls_per_minute"] = int(g.callsPerMinute)
      o["bandwidth_mbps"] = num(g.bandwidthMbps)
      var c = Obj()
      c["video_uploads"] = int(g.videoUploads)
      c["ai_generations"] = int(g.aiGenerations)
      c["api_requests"] = int(g.apiRequests)
      o["concurrency"] = c.value
      row["global"] = o.value
    }
    return Canonical.row(row.o, Schema.rateLimits)
  }

  private static func format2(_ i: Int) -> String { i < 10 ? "0\(i)" : "\(i)" }

  static func securityPolicy(_ r: Resource, _ s: SecurityPolicySpec) -> [String: [Row]] {
    let owner = JSONValue.string(r.name)
    var retention: [Row] = []
    if let x = s.retention {
      func add(_ category: String, _ d: ModelDuration?) {
        guard let d else { return }
        retention.append(["policy": owner, "category": .string(category), "days": .double(d.seconds / 86_400), "until_rotated": false])
      }
      add("user_data", x.userData)
      add("analytics", x.analytics)
      add("logs", x.logs)
      switch x.apiKeys {
      case .untilRotated?: retention.append(["policy": owner, "category": "api_keys", "until_rotated": true])
      case .duration(let d)?: add("api_keys", d)
      case nil: break
      }
    }
    var permissions: [Row] = []
    var seen = Set<String>()
    for a in s.serviceAccounts {
      for p in a.permissions where seen.insert(a.name + "/" + p).inserted {
        permissions.append(["policy": owner, "account": .string(a.name), "permission": .string(p)])
      }
    }
    return [
      Schema.retentionPolicies.name: retention.map { Canonical.row($0, Schema.retentionPolicies) },
      Schema.serviceAccountPermissions.name: permissions.map { Canonical.row($0, Schema.serviceAccountPermissions) },
    ]
  }
}
