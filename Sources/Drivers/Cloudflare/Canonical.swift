// Desired and observed canonical forms of a CDNZone in Cloudflare (docs/drivers/cloudflare.md).
import Crypto
import DriverKit
import EmpireModel
import Foundation

enum Phase {
  static let cache = "http_request_cache_settings"
  static let config = "http_config_settings"
}

enum Canonical {
  /// Rule refs ytempire owns start with this; every other rule is someone else's.
  static let refPrefix = "ytempire-"
  /// The keys of a rule that are compared (the server adds `id`, `version`, `last_updated`).
  static let ruleKeys = ["ref", "description", "expression", "action", "action_parameters", "enabled"]
  /// Cloudflare's longest cache TTL: one year.
  static let maxTTL: Int64 = 31_536_000

  static func sha256Hex(_ bytes: [UInt8]) -> String {
    SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
  }

  static func isOwned(_ ref: String?) -> Bool { ref?.hasPrefix(refPrefix) ?? false }

  // MARK: expressions

  /// A rules-language string literal.
  static func quote(_ s: String) -> String {
    "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
  }

  /// The filter expression of a rule's match globs: extensions become one `eq`/`in` test,
  /// `/path/*` a `starts_with`, `*.suffix.ext` an `ends_with`, an exact path an `eq`; joined by `or`.
  static func expression(_ match: [String]) -> String {
    var terms: [String] = []
    var extensions: [String] = []
    var extensionSlot: Int?
    for m in match {
      switch CacheMatch(m) {
      case .extension(let e)?:
        if !extensions.contains(e) { extensions.append(e) }
        if extensionSlot == nil {
          extensionSlot = terms.count
          terms.append("")
        }
      case .prefix(let p)?: terms.append("starts_with(http.request.uri.path, \(quote(p)))")
      case .suffix(let s)?: terms.append("ends_with(http.request.uri.path, \(quote(s)))")
      case .exact(let p)?: terms.append("http.request.uri.path eq \(quote(p))")
      case nil: continue  // the model rejects these
      }
    }
    if let slot = extensionSlot {
      terms[slot] =
        extensions.count == 1
        ? "http.request.uri.path.extension eq \(quote(extensions[0]))"
        : "http.request.uri.path.extension in {\(extensions.map(quote).joined(separator: " "))}"
    }
    return terms.joined(separator: " or ")
  }

  // MARK: desired

  static func seconds(_ d: ModelDuration) -> Int64 { d.milliseconds / 1000 }

  static func cacheRule(_ r: CDNZoneSpec.Rule, resource: String, problems: inout [String]) -> JSONValue {
    var p: [String: JSONValue]
    if r.cacheLevel == .bypass {
      p = ["cache": false]
    } else {
      // standard: the origin's Cache-Control (no-store, private) is honoured; aggressive: it is not.
      p = ["cache": true, "origin_cache_control": .bool(r.cacheLevel == .standard)]
      if let e = r.edgeTTL {
        let s = seconds(e)
        if s > maxTTL { problems.append("rule \(r.name): edgeTTL \(e) is over Cloudflare's maximum of 365d") }
        p["edge_ttl"] = ["mode": "override_origin", "default": .int(min(s, maxTTL))]
      } else {
        p["edge_ttl"] = ["mode": "respect_origin"]
      }
      if let b = r.browserTTL {
        let s = seconds(b)
        if s > maxTTL { problems.append("rule \(r.name): browserTTL \(b) is over Cloudflare's maximum of 365d") }
        p["browser_ttl"] = ["mode": "override_origin", "default": .int(min(s, maxTTL))]
      }
    }
    return [
      "ref": .string(refPrefix + r.name),
      "description": .string("ytempire CDNZone/\(resource) rule \(r.name)"),
      "expression": .string(expression(r.match)),
      "action": "set_cache_settings",
      "action_parameters": .object(p),
      "enabled": true,
    ]
  }

  static func configRule(_ r: CDNZoneSpec.Rule, resource: String) -> JSONValue? {
    guard let polish = r.polish else { return nil }
    return [
      "ref": .string(refPrefix + r.name),
      "description": .string("ytempire CDNZone/\(resource) rule \(r.name): polish"),
      "expression": .string(expression(r.match)),
      "action": "set_config",
      "action_parameters": ["polish": .string(polish.rawValue)],
      "enabled": true,
    ]
  }

  /// The seed's region names → R2 location hints.
  static let locationHints: [String: String] = [
    "us-west": "wnam", "us-east": "enam", "eu-west": "weur", "eu-east": "eeur", "eu-central": "eeur",
    "asia-pacific": "apac", "ap": "apac", "oceania": "oc",
  ]

  static func validBucketName(_ n: String) -> Bool {
    (3...63).contains(n.count) && n.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") } && n.first != "-"
      && n.last != "-"
  }

  /// The desired form: what is diffed, and whose digest tells whether the resource changed.
  static func desired(_ resource: Resource, files: RepositoryFiles) -> JSONValue {
    guard let z = resource.cdnZone else { return .null }
    var problems: [String] = []
    let cache = z.rules.map { cacheRule($0, resource: resource.name, problems: &problems) }
    let config = z.rules.compactMap { configRule($0, resource: resource.name) }
    var settings: [String: JSONValue] = [:]
    let webps = z.rules.compactMap(\.webp)
    if !webps.isEmpty { settings["webp"] = webps.contains(true) ? "on" : "off" }

    var workers: [String: JSONValue] = [:]
    for w in z.workers {
      var entry: [String: JSONValue] = ["route": .string(w.route), "scriptFile": .string(w.scriptFile)]
      if let bytes = files.read(w.scriptFile) {
        entry["sha256"] = .string(sha256Hex(bytes))
      } else {
        problems.append("worker \(w.name): the revision has no file \(w.scriptFile)")
      }
      workers[w.name] = .object(entry)
    }

    var buckets: [String: JSONValue] = [:]
    if z.type == .push, z.storage == .r2 {
      if z.replication.isEmpty {
        buckets[resource.name] = .object([:])
      }
      for region in z.replication {
        let name = "\(resource.name)-\(region)"
        guard let hint = locationHints[region] else {
          problems.append(
            "replication region '\(region)' has no R2 location hint (known: \(locationHints.keys.sorted().joined(separator: ", ")))")
          continue
        }
        guard validBucketName(name) else {
          problems.append("bucket name '\(name)' is not a valid R2 bucket name (3–63 lowercase letters, digits and -)")
          continue
        }
        buckets[name] = ["location": .string(hint), "region": .string(region)]
      }
    }
    var out: [String: JSONValue] = [
      "zone": .string(z.zone),
      "cacheRules": .array(cache),
      "configRules": .array(config),
      "settings": .object(settings),
      "workers": .object(workers),
      "buckets": .object(buckets),
    ]
    if !problems.isEmpty { out["problems"] = JSONValue(problems) }
    return .object(out)
  }

  // MARK: observed

  /// A rule as compared: only the keys ytempire writes (`enabled` defaults to true).
  static func rule(_ r: JSONValue) -> JSONValue {
    var o: [String: JSONValue] = [:]
    for k in ruleKeys { if let v = r[k], v != .null { o[k] = v } }
    if o["enabled"] == nil { o["enabled"] = true }
    return .object(o)
  }

  /// A rule as sent back in a whole-phase PUT: as read, without what the server stamps.
  static func writable(_ r: JSONValue) -> JSONValue {
    guard var o = r.object else { return r }
    o["version"] = nil
    o["last_updated"] = nil
    return .object(o)
  }

  /// Owned rules (canonical, in order) and a fingerprint of everything in the phase (foreign
  /// rules included, server stamps excluded) to notice edits made by others.
  static func phaseState(_ rules: [JSONValue]) -> JSONValue {
    let owned = rules.filter { isOwned($0["ref"]?.string) }.map(rule)
    let foreign = rules.filter { !isOwned($0["ref"]?.string) }
    return [
      "rules": .array(owned),
      "foreign": .array(foreign.map { .string($0["ref"]?.string ?? $0["id"]?.string ?? "?") }),
      "fingerprint": .string(fingerprint(rules)),
    ]
  }

  static func fingerprint(_ rules: [JSONValue]) -> String {
    sha256Hex(
      JSONValue.array(
        rules.map { r in
          var o = rule(r).object ?? [:]
          o["id"] = r["id"]
          return .object(o)
        }
      ).canonicalBytes)
  }

  /// The foreign rules of a phase, canonical, in order (what a write must leave as it was).
  static func foreign(_ rules: [JSONValue]) -> [JSONValue] {
    rules.filter { !isOwned($0["ref"]?.string) }.map { r in
      var o = rule(r).object ?? [:]
      o["id"] = r["id"]
      return .object(o)
    }
  }

  // MARK: merging a phase

  /// The phase's rules after a write: rules whose ref is in `remove` go; when `set` is given
  /// (ytempire's owned rules in their desired order), the owned rules named in it take the
  /// places of those already there, in the desired order, each new one right after the rule
  /// it follows in the desired order (new rules of an empty phase go at the end). Every other
  /// rule — foreign, or owned and not named — keeps its place and content. Ids of rules that
  /// stay are sent back so Cloudflare keeps them.
  static func merge(_ current: [JSONValue], set: [JSONValue]?, remove: Set<String>) -> [JSONValue] {
    let kept = current.filter { r in !(r["ref"]?.string.map(remove.contains) ?? false) }.map(writable)
    guard let set else { return kept }
    let setRefs = Set(set.compactMap { $0["ref"]?.string })
    let byRef = Dictionary(kept.compactMap { r in r["ref"]?.string.map { ($0, r) } }, uniquingKeysWith: { a, _ in a })
    // Segments of the desired order: each rule already present starts one; new rules join
    // the segment before them (or the prefix when they come first).
    var prefix: [JSONValue] = []
    var segments: [[JSONValue]] = []
    for d in set {
      var r = d.object ?? [:]
      let ref = r["ref"]?.string ?? ""
      if let existing = byRef[ref] {
        r["id"] = existing["id"]
        segments.append([.object(r)])
      } else if segments.isEmpty {
        prefix.append(.object(r))
      } else {
        segments[segments.count - 1].append(.object(r))
      }
    }
    var out: [JSONValue] = []
    var slot = 0
    for r in kept {
      if let ref = r["ref"]?.string, setRefs.contains(ref) {
        if slot == 0 { out += prefix }
        if slot < segments.count { out += segments[slot] }
        slot += 1
      } else {
        out.append(r)
      }
    }
    if slot == 0 { out += prefix }
    return out
  }
}
