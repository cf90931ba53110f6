import DriverKit
import EmpireModel
import Foundation

/// `ytempire import` of CDNZones (DESIGN A10 "Import"): each zone the token sees, with the cache
/// and config rules the model can express, the zone's Workers routes and scripts, and the R2
/// buckets of a push zone, read with the observation's calls and canonical forms. A rule is
/// imported only when rendering it back from the manifest gives exactly the rule Cloudflare
/// holds; every other rule is listed with why, never dropped silently.
extension CloudflareDriver: Importer {
  public var importKinds: Set<Kind> { [.cdnZone] }

  public func importCalls(_ request: ImportRequest, pricing: Pricing) -> [PlannedCall] {
    guard request.wants(.cdnZone) else { return [] }
    return [pricing.call(Self.service, Op.zonesList)]
  }

  public func discover(_ request: ImportRequest, budget: ImportBudget, context: DriverContext) async throws -> ImportResult {
    guard request.wants(.cdnZone) else { return ImportResult() }
    var result = ImportResult()
    let zones: [JSONValue]
    do { zones = try await listZones(context: context) } catch is CancellationError { throw CancellationError() } catch {
      result.errors.append("cloudflare: \(error)")
      return result
    }
    var bucketNames: [String: [String: JSONValue]] = [:]  // account → bucket name → bucket
    for z in zones.sorted(by: { ($0["name"]?.string ?? "") < ($1["name"]?.string ?? "") }) {
      guard let zone = z["name"]?.string, let zoneId = z["id"]?.string, Path.isIdentifier(zoneId) else { continue }
      do {
        let accountId = config.accountId ?? z["account"]?["id"]?.string.flatMap { Path.isIdentifier($0) ? $0 : nil }
        var buckets: [String: JSONValue] = [:]
        if let accountId {
          if bucketNames[accountId] == nil { bucketNames[accountId] = try await listBuckets(accountId, context: context) }
          buckets = bucketNames[accountId] ?? [:]
        }
        if let r = try await importZone(zone, zoneId: zoneId, accountId: accountId, buckets: buckets, into: &result, context: context) {
          result.resources.append(r)
        }
      } catch is CancellationError {
        throw CancellationError()
      } catch {
        result.errors.append("cloudflare: zone \(zone): \(error)")
      }
    }
    return result
  }

  /// Every zone the token sees (`GET /zones`, 50 a page, at most 100 pages).
  func listZones(context: DriverContext) async throws -> [JSONValue] {
    var out: [JSONValue] = []
    var page = 1
    while page <= 100 {
      let body = try await send(Op.zonesList, "GET", "/zones?page=\(page)&per_page=50", resource: "import", context: context)
      guard let body else { break }
      let env = try Self.unwrap(body, Op.zonesList, "import")
      let items = env.array ?? []
      out += items
      if items.count < 50 { break }
      page += 1
    }
    return out
  }

  /// The account's R2 buckets by name.
  func listBuckets(_ accountId: String, context: DriverContext) async throws -> [String: JSONValue] {
    let r = try await self.result(
      send(Op.bucketsGet, "GET", "/accounts/\(Path.escape(accountId))/r2/buckets", resource: "import", context: context),
      Op.bucketsGet, "import")
    var out: [String: JSONValue] = [:]
    for b in r["buckets"]?.array ?? [] { if let n = b["name"]?.string { out[n] = b } }
    return out
  }

  private func importZone(
    _ zone: String, zoneId: String, accountId: String?, buckets allBuckets: [String: JSONValue], into result: inout ImportResult,
    context: DriverContext
  ) async throws -> ImportedResource? {
    let (cacheRules, _) = try await readPhase(Phase.cache, zoneId: zoneId, resource: zone, context: context)
    let (configRules, _) = try await readPhase(Phase.config, zoneId: zoneId, resource: zone, context: context)
    // The resource's name: the one its rules' descriptions name, else the zone's name without
    // its top-level domain (ytempire-video.com → ytempire-video).
    let described = cacheRules.compactMap { r -> String? in
      guard Canonical.isOwned(r["ref"]?.string), let d = r["description"]?.string, d.hasPrefix("ytempire CDNZone/") else { return nil }
      return d.dropFirst("ytempire CDNZone/".count).split(separator: " ").first.map(String.init)
    }
    let bare = zone.split(separator: ".").dropLast().joined(separator: ".")
    let name = described.first ?? ImportNames.slug(bare.isEmpty ? zone : bare, fallback: "zone")
    let what = { (ref: String) in "Cloudflare zone \(zone): rule \(ref)" }

    // Rules: owned and expressible, in the phase's order.
    var rules: [[String: JSONValue]] = []
    var specRules: [CDNZoneSpec.Rule] = []
    for r in cacheRules {
      let ref = r["ref"]?.string ?? r["id"]?.string ?? "?"
      guard Canonical.isOwned(r["ref"]?.string) else {
        result.notImported.append(
          NotImported(
            object: what(ref),
            reason:
              "ytempire owns only rules whose ref starts with \(Canonical.refPrefix); it leaves this one as it is (to hand it over, give it the ref \(Canonical.refPrefix)<name> and the description \"ytempire CDNZone/\(name) rule <name>\")"
          ))
        continue
      }
      switch Self.rule(Canonical.rule(r), resource: name) {
      case .failure(let why): result.notImported.append(NotImported(object: what(ref), reason: why.description))
      case .success(let (spec, json)):
        specRules.append(spec)
        rules.append(json)
      }
    }
    for r in configRules {
      let ref = r["ref"]?.string ?? r["id"]?.string ?? "?"
      guard Canonical.isOwned(r["ref"]?.string) else {
        result.notImported.append(
          NotImported(
            object: what(ref), reason: "a configuration rule ytempire does not own (ref not \(Canonical.refPrefix)…); it is left as it is"))
        continue
      }
      let ruleName = String(ref.dropFirst(Canonical.refPrefix.count))
      let c = Canonical.rule(r)
      guard let i = specRules.firstIndex(where: { $0.name == ruleName }),
        let polish = c["action_parameters"]?["polish"]?.string.flatMap(CDNZoneSpec.Polish.init(rawValue:))
      else {
        result.notImported.append(
          NotImported(object: what(ref), reason: "a polish rule with no cache rule of the same name, or another setting"))
        continue
      }
      var withPolish = specRules[i]
      withPolish.polish = polish
      guard Canonical.configRule(withPolish, resource: name) == c else {
        result.notImported.append(NotImported(object: what(ref), reason: "its match or description is not its cache rule's"))
        continue
      }
      specRules[i] = withPolish
      rules[i]["polish"] = .string(polish.rawValue)
    }
    var settings: [String: JSONValue] = [:]
    if let i = specRules.firstIndex(where: { $0.polish != nil }) {
      // webp: managed only when it is on (a rule with `webp: true`).
      let r = try await self.result(
        send(Op.settingsGet, "GET", "/zones/\(Path.escape(zoneId))/settings/webp", resource: name, context: context), Op.settingsGet, name)
      if r["value"]?.string == "on" {
        rules[i]["webp"] = true
        settings["webp"] = "on"
      }
    }

    // Workers: each script on a route of the zone, its source written beside the manifest.
    var workers: [JSONValue] = []
    var observedWorkers: [String: JSONValue] = [:]
    var external: [String: String] = [ExternalKey.zoneId: zoneId]
    if let accountId { external[ExternalKey.accountId] = accountId }
    var files: [String: [UInt8]] = [:]
    if let accountId {
      let listed = try await self.result(
        send(Op.routesList, "GET", "/zones/\(Path.escape(zoneId))/workers/routes", resource: name, context: context), Op.routesList, name)
      var seen = Set<String>()
      for route in listed.array ?? [] {
        guard let rid = route["id"]?.string, let pattern = route["pattern"]?.string else { continue }
        guard let script = route["script"]?.string, !script.isEmpty else { continue }
        guard ImportNames.slug(script, fallback: "") == script, WorkerRoute.problem(pattern, zone: zone) == nil else {
          result.notImported.append(
            NotImported(
              object: "Cloudflare zone \(zone): Workers route \(pattern) → \(script)",
              reason: "the script name or the route is not one a CDNZone worker can name"))
          continue
        }
        guard seen.insert(script).inserted else {
          result.notImported.append(
            NotImported(
              object: "Cloudflare zone \(zone): Workers route \(pattern) → \(script)",
              reason: "a CDNZone worker has one route; the script's first route was imported"))
          continue
        }
        guard
          let bytes = try await send(
            Op.scriptsContent, "GET", "/accounts/\(Path.escape(accountId))/workers/scripts/\(Path.escape(script))/content/v2",
            resource: name, context: context, notFound: ["10007"])
        else { continue }
        let file = "cdn/workers/\(script).js"
        files[file] = bytes
        workers.append(["name": .string(script), "route": .string(pattern), "scriptFile": .string(file)])
        observedWorkers[script] = ["sha256": .string(Canonical.sha256Hex(bytes)), "route": Self.route(route)]
        external[ExternalKey.route(script)] = rid
        external[ExternalKey.script(script)] = script
      }
    }

    // A push zone: R2 buckets `<name>-<region>` (or `<name>`) in their regions' locations.
    var replication: [String] = []
    var observedBuckets: [String: JSONValue] = [:]
    for (region, hint) in Canonical.locationHints.sorted(by: { $0.key < $1.key }) {
      let b = "\(name)-\(region)"
      guard let bucket = allBuckets[b], (bucket["location"]?.string ?? "").lowercased() == hint else { continue }
      replication.append(region)
      observedBuckets[b] = ["location": .string(hint)]
      external[ExternalKey.bucket(b)] = b
    }
    if replication.isEmpty, let bucket = allBuckets[name] {
      observedBuckets[name] = ["location": .string((bucket["location"]?.string ?? "").lowercased())]
      external[ExternalKey.bucket(name)] = name
    }
    let push = !observedBuckets.isEmpty
    var spec: [String: JSONValue] = ["provider": "cloudflare", "zone": .string(zone), "type": push ? "push" : "pull"]
    var notes = ["Imported from the Cloudflare zone \(zone) (\(zoneId))."]
    if push {
      spec["storage"] = "r2"
      if !replication.isEmpty { spec["replication"] = .array(replication.map(JSONValue.string)) }
    } else {
      spec["origin"] = .string("https://\(zone)")
      notes.append("Cloudflare does not hold the origin as ytempire models it: `origin` is a placeholder to replace.")
    }
    if !rules.isEmpty { spec["rules"] = .array(rules.map(JSONValue.object)) }
    if !workers.isEmpty { spec["workers"] = .array(workers) }
    if cacheRules.contains(where: { !Canonical.isOwned($0["ref"]?.string) }) {
      notes.append("Rules ytempire does not own stay in the zone as they are (listed by `ytempire import` as not imported).")
    }

    var state: [String: JSONValue] = [
      "zoneId": .string(zoneId), "cache": Canonical.phaseState(cacheRules), "config": Canonical.phaseState(configRules),
      "settings": .object(settings), "workers": .object(observedWorkers), "buckets": .object(observedBuckets),
    ]
    if let accountId { state["accountId"] = .string(accountId) }
    return ImportedResource(
      kind: .cdnZone, name: name, spec: .object(spec), notes: notes, files: files, external: external, observed: .object(state))
  }

  struct Unexpressible: Error, CustomStringConvertible { var description: String }

  /// An owned cache rule (canonical) as a CDNZone rule, when rendering that rule back gives it exactly.
  static func rule(_ r: JSONValue, resource: String) -> Result<(CDNZoneSpec.Rule, [String: JSONValue]), Unexpressible> {
    func no(_ s: String) -> Result<(CDNZoneSpec.Rule, [String: JSONValue]), Unexpressible> { .failure(Unexpressible(description: s)) }
    let name = String((r["ref"]?.string ?? "").dropFirst(Canonical.refPrefix.count))
    guard ImportNames.slug(name, fallback: "") == name else { return no("its ref does not end in a resource name") }
    guard let expr = r["expression"]?.string, let match = matches(expr) else {
      return no("its expression is not one a CDNZone rule's match globs make (extensions, path prefixes, suffixes, exact paths)")
    }
    let p = r["action_parameters"]
    let level: CDNZoneSpec.CacheLevel
    var edge: ModelDuration?
    var browser: ModelDuration?
    if p?["cache"] == false {
      level = .bypass
    } else {
      level = p?["origin_cache_control"] == false ? .aggressive : .standard
      if p?["edge_ttl"]?["mode"]?.string == "override_origin", let s = p?["edge_ttl"]?["default"]?.int { edge = .seconds(s) }
      if p?["browser_ttl"]?["mode"]?.string == "override_origin", let s = p?["browser_ttl"]?["default"]?.int { browser = .seconds(s) }
    }
    let spec = CDNZoneSpec.Rule(name: name, match: match, edgeTTL: edge, browserTTL: browser, cacheLevel: level)
    var problems: [String] = []
    guard Canonical.cacheRule(spec, resource: resource, problems: &problems) == r, problems.isEmpty else {
      return no("its settings or description are not what a CDNZone rule renders (set by hand in the dashboard?)")
    }
    var o: [String: JSONValue] = [
      "name": .string(name), "match": .array(match.map(JSONValue.string)), "cacheLevel": .string(level.rawValue),
    ]
    if let edge { o["edgeTTL"] = .string(edge.description) }
    if let browser { o["browserTTL"] = .string(browser.description) }
    return .success((spec, o))
  }

  /// The match globs whose expression `expr` is, or nil when it is not one `Canonical.expression` writes.
  static func matches(_ expr: String) -> [String]? {
    var out: [String] = []
    for term in expr.components(separatedBy: " or ") {
      func quoted(_ s: Substring) -> String? {
        guard s.hasPrefix("\""), s.hasSuffix("\""), s.count >= 2 else { return nil }
        let inner = s.dropFirst().dropLast()
        guard !inner.contains("\\"), !inner.contains("\"") else { return nil }
        return String(inner)
      }
      if term.hasPrefix("http.request.uri.path.extension eq "), let e = quoted(term.dropFirst(35)[...]) {
        out.append("*." + e)
      } else if term.hasPrefix("http.request.uri.path.extension in {"), term.hasSuffix("}") {
        let inner = term.dropFirst(36).dropLast()
        for part in inner.split(separator: " ") {
          guard let e = quoted(part) else { return nil }
          out.append("*." + e)
        }
      } else if term.hasPrefix("starts_with(http.request.uri.path, "), term.hasSuffix(")"), let p = quoted(term.dropFirst(35).dropLast()) {
        out.append(p + "*")
      } else if term.hasPrefix("ends_with(http.request.uri.path, "), term.hasSuffix(")"), let s = quoted(term.dropFirst(33).dropLast()) {
        out.append("*" + s)
      } else if term.hasPrefix("http.request.uri.path eq "), let p = quoted(term.dropFirst(25)[...]) {
        out.append(p)
      } else {
        return nil
      }
    }
    guard !out.isEmpty, out.allSatisfy({ CacheMatch($0) != nil }), Canonical.expression(out) == expr else { return nil }
    return out
  }
}
