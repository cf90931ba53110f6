import CurlHTTP
import DriverKit
import EmpireModel
import Foundation
import TestSupport
import Testing

@testable import CloudflareDriver
@testable import Sandbox

/// A made-up CDNZone manifest.
func zoneYAML(_ name: String, zone: String, rules: [String] = [], workers: [String] = [], replication: [String]? = nil) -> String {
  var s = "apiVersion: ytempire.io/v1\nkind: CDNZone\nmetadata: {name: \(name)}\nspec:\n  provider: cloudflare\n  zone: \(zone)\n"
  if let replication {
    s += "  type: push\n  storage: r2\n  replication: [\(replication.joined(separator: ", "))]\n"
  } else {
    s += "  type: pull\n  origin: https://origin.\(zone)\n"
  }
  if !rules.isEmpty { s += "  rules:\n" + rules.map { "    - \($0)\n" }.joined() }
  if !workers.isEmpty { s += "  workers:\n" + workers.map { "    - \($0)\n" }.joined() }
  return s
}

let ruleA = #"{name: a, match: ["*.mp4"], edgeTTL: 1d, cacheLevel: aggressive}"#
let ruleB = #"{name: b, match: ["/api/*"], cacheLevel: bypass}"#
let ruleC = #"{name: c, match: ["*.jpg", "*.png"], edgeTTL: 7d, browserTTL: 1h, cacheLevel: standard, polish: lossless, webp: true}"#
let workerW1 = #"{name: w1, route: "shop.test/w1/*", scriptFile: w/w1.js}"#
let workerW2 = #"{name: w2, route: "*shop.test/w2/*", scriptFile: w/w2.js}"#
let scripts: [String: String] = [
  "w/w1.js": "addEventListener('fetch', event => event.respondWith(fetch(event.request))) // w1\n",
  "w/w2.js": "addEventListener('fetch', event => event.respondWith(new Response('w2'))) // w2\n",
]
func files(_ extra: [String: String] = [:]) -> RepositoryFiles {
  .memory(scripts.merging(extra) { _, b in b }.mapValues { Array($0.utf8) })
}

/// A hand-made rule, as the dashboard writes it.
func manualRule(_ ref: String, id: String) -> JSON {
  [
    "id": .string(id), "ref": .string(ref), "description": "made by hand", "expression": "http.request.uri.path.extension eq \"m3u8\"",
    "action": "set_cache_settings", "action_parameters": ["cache": true], "enabled": true, "version": "1",
    "last_updated": "2024-01-15T12:00:00.000000Z",
  ]
}

@Suite("CloudflareDriver over a fake transport")
struct CloudflareDriverTests {
  @Test("create from empty: the example's two zones, every call planned, then apply-then-plan shows no change")
  func createFromEmpty() async throws {
    let rig = Rig()
    let t = rig.targets()
    let planned = rig.driver.observationCalls(t, pricing: rig.pricing)
    #expect(
      planned.map(\.operation) == [
        "zones.list", "rulesets.get", "rulesets.get", "settings.get", "routes.list", "scripts.content", "scripts.content",
        "zones.list", "rulesets.get", "rulesets.get", "buckets.get", "buckets.get", "buckets.get",
      ])
    #expect(planned.allSatisfy { $0.service == "cloudflare" && $0.units == 0 })
    let observed = try await rig.observe(t)
    #expect(rig.fake.operations == planned.map(\.operation))

    let actions = rig.diff(t, observed)
    #expect(
      actions.keys == [
        "ytempire-static:create:rules/cache", "ytempire-static:create:rules/config", "ytempire-static:update:setting/webp",
        "ytempire-static:create:script/geo-router", "ytempire-static:create:script/thumbnail-optimizer",
        "ytempire-static:create:route/geo-router", "ytempire-static:create:route/thumbnail-optimizer",
        "ytempire-video:create:bucket/ytempire-video-asia-pacific", "ytempire-video:create:bucket/ytempire-video-eu-west",
        "ytempire-video:create:bucket/ytempire-video-us-east",
      ])
    for a in actions { #expect(!a.payload.canonicalString.contains(Rig.token)) }

    rig.fake.reset()
    let applied = try await rig.apply(actions, observed)
    #expect(rig.fake.operations == actions.flatMap { $0.calls.map(\.operation) })
    #expect(rig.fake.seen.withLock { $0.allSatisfy { $0.authorization == "Bearer \(Rig.token)" } })

    // What Cloudflare now holds.
    let rules = rig.fake.rules("ytempire.com")
    #expect(rules.map { $0["ref"]?.string ?? "" } == ["ytempire-videos", "ytempire-images", "ytempire-api", "ytempire-static-assets"])
    #expect(rules[0]["expression"]?.string == #"http.request.uri.path.extension eq "mp4""#)
    #expect(rules[1]["expression"]?.string == #"http.request.uri.path.extension in {"jpg" "png" "webp"}"#)
    #expect(rules[2]["expression"]?.string == #"starts_with(http.request.uri.path, "/api/")"#)
    #expect(
      rules[0]["action_parameters"] == [
        "cache": true, "origin_cache_control": false, "edge_ttl": ["mode": "override_origin", "default": 86400],
      ])
    #expect(rules[1]["action_parameters"]?["origin_cache_control"] == true)
    #expect(rules[1]["action_parameters"]?["edge_ttl"]?["default"] == .int(604_800))
    #expect(rules[2]["action_parameters"] == ["cache": false])
    #expect(rules[3]["action_parameters"]?["browser_ttl"] == ["mode": "override_origin", "default": 31_536_000])
    let config = rig.fake.rules("ytempire.com", "http_config_settings")
    #expect(config.map { $0["ref"]?.string ?? "" } == ["ytempire-images"])
    #expect(config.first?["action"] == "set_config")
    #expect(config.first?["action_parameters"] == ["polish": "lossy"])
    #expect(config.first?["expression"] == rules[1]["expression"])
    let zid = rig.fake.zoneId("ytempire.com")
    #expect(rig.fake.world { $0.settings[zid]?["webp"]?["value"] } == "on")
    #expect(rig.fake.world { $0.scriptContent["thumbnail-optimizer"] } == Example.script("thumbnail-optimizer"))
    #expect(rig.fake.world { $0.scriptContent["geo-router"] } == Example.script("geo-router"))
    let routes = rig.fake.world { $0.routes[zid] ?? [] }
    #expect(
      Set(routes.map { "\($0["pattern"]?.string ?? "") → \($0["script"]?.string ?? "")" })
        == ["*ytempire.com/* → thumbnail-optimizer", "*ytempire.com/video/* → geo-router"])
    #expect(
      rig.fake.world { $0.buckets.mapValues { $0["location"]?.string ?? "" } }
        == ["ytempire-video-us-east": "ENAM", "ytempire-video-eu-west": "WEUR", "ytempire-video-asia-pacific": "APAC"])
    // The seeded hand-made rule of ytempire-video.com was never written (that zone has no rules).
    #expect(rig.fake.rules("ytempire-video.com").map { $0["ref"]?.string } == ["manual-fonts"])
    #expect(rig.fake.world { $0.rulesets[rig.fake.zoneId("ytempire-video.com")]?["http_request_cache_settings"]?["version"] } == "1")

    // Perpetual diff: the states apply returned, then two fresh observations, plan nothing.
    #expect(rig.diff(t, applied).isEmpty)
    for _ in 0..<2 {
      let t2 = rig.targets()
      rig.fake.reset()
      let again = try await rig.observe(t2)
      #expect(rig.fake.operations == rig.driver.observationCalls(t2, pricing: rig.pricing).map(\.operation))
      #expect(rig.diff(t2, again).isEmpty)
      for (id, s) in again { #expect(s == applied[id], "\(id)") }
    }
    #expect(rig.external("ytempire-static")["routes/geo-router"] != nil)
    #expect(rig.external("ytempire-video")["buckets/ytempire-video-us-east"] == "ytempire-video-us-east")
  }

  @Test("a one-field change makes exactly the calls it needs")
  func oneFieldChange() async throws {
    let rig = Rig()
    try await rig.converge()
    let idsBefore = rig.fake.rules("ytempire.com").map { $0["id"]?.string ?? "" }

    // A rule's TTL: one whole-phase write (re-read + PUT), nothing else.
    let ttl = rig.with(examples(editing: "ytempire-static.yaml") { $0.replacingOccurrences(of: "edgeTTL: 24h", with: "edgeTTL: 12h") })
    let t = ttl.targets()
    let actions = ttl.diff(t, try await ttl.observe(t))
    #expect(actions.keys == ["ytempire-static:update:rules/cache"])
    #expect(actions.first?.changes == [FieldChange(path: "cacheRules.videos.action_parameters.edge_ttl.default", old: 86400, new: 43200)])
    #expect(actions.first?.calls.map(\.operation) == ["rulesets.get", "rulesets.update"])
    ttl.fake.reset()
    _ = try await ttl.apply(actions, try await ttl.observe(t))
    #expect(ttl.fake.operations.suffix(2) == ["rulesets.get", "rulesets.update"])
    #expect(ttl.fake.rules("ytempire.com").map { $0["id"]?.string ?? "" } == idsBefore)
    #expect(ttl.fake.rules("ytempire.com")[0]["action_parameters"]?["edge_ttl"]?["default"] == .int(43200))

    // A route: one PUT of that route, same id.
    let zid = rig.fake.zoneId("ytempire.com")
    let routeId = rig.external("ytempire-static")["routes/geo-router"]
    let route = ttl.with(
      examples(editing: "ytempire-static.yaml") {
        $0.replacingOccurrences(of: "edgeTTL: 24h", with: "edgeTTL: 12h").replacingOccurrences(
          of: "\"*ytempire.com/video/*\"", with: "\"ytempire.com/video/*\"")
      })
    let t2 = route.targets()
    let s2 = try await route.observe(t2)
    let a2 = route.diff(t2, s2)
    #expect(a2.keys == ["ytempire-static:update:route/geo-router"])
    route.fake.reset()
    let after = try await route.apply(a2, s2)
    #expect(route.fake.operations == ["routes.update"])
    #expect(route.fake.world { $0.routes[zid]?.first { $0["id"]?.string == routeId }?["pattern"] } == "ytempire.com/video/*")
    #expect(route.diff(t2, after).isEmpty)

    // A script's bytes: one upload.
    let path = "cdn/workers/geo-router.js"
    let edited = Example.script("geo-router") + "// v2\n"
    let script = route.with(route.index.resources.values.map { $0 }, files: Example.files(overrides: [path: edited]))
    let t3 = script.targets()
    let s3 = try await script.observe(t3)
    let a3 = script.diff(t3, s3)
    #expect(a3.keys == ["ytempire-static:update:script/geo-router"])
    script.fake.reset()
    _ = try await script.apply(a3, s3)
    #expect(script.fake.operations == ["scripts.upload"])
    #expect(script.fake.world { $0.scriptContent["geo-router"] } == edited)
  }

  @Test("hand-made rules, routes, scripts and buckets survive, in their place and with their content")
  func foreignObjectsSurvive() async throws {
    let resources = decode(zoneYAML("shop", zone: "shop.test", rules: [ruleA, ruleB], workers: [workerW1]))
    let fake = FakeCloudflare(seeding: resources)
    let zid = fake.zoneId("shop.test")
    let manual = manualRule("manual-hls", id: "0123456789abcdef0123456789abcdef")
    fake.world { cf in
      cf.rulesets[zid] = [
        "http_request_cache_settings": [
          "id": "rs1", "name": "default", "description": "", "kind": "zone",
          "phase": "http_request_cache_settings", "version": "4", "last_updated": "2024-01-15T12:00:00Z",
          "rules": [manual],
        ]
      ]
      cf.scripts["legacy"] = ["id": "legacy", "etag": "x"]
      cf.scriptContent["legacy"] = "addEventListener('fetch', e => {})"
      cf.routes[zid] = [["id": "feedfacefeedfacefeedfacefeedface", "pattern": "shop.test/legacy/*", "script": "legacy"]]
      cf.buckets["archive"] = [
        "name": "archive", "creation_date": "2024-01-15T12:00:00.000Z", "location": "WNAM", "storage_class": "Standard",
      ]
    }
    let rig = Rig(resources: resources, files: files(), fake: fake)
    let first = try await rig.converge()
    #expect(first.keys == ["shop:create:rules/cache", "shop:create:script/w1", "shop:create:route/w1"])
    var rules = fake.rules("shop.test")
    #expect(rules.map { $0["ref"]?.string ?? "" } == ["manual-hls", "ytempire-a", "ytempire-b"])
    #expect(Canonical.rule(jv(rules[0])) == Canonical.rule(jv(manual)) && rules[0]["id"] == manual["id"])

    // Someone puts a rule between ytempire's two; then rule b changes: the hand-made ones keep their places.
    fake.world { cf in
      var rs = cf.rulesets[zid]!["http_request_cache_settings"]!
      var list = rs["rules"]!.array!
      list.insert(manualRule("manual-between", id: "11111111111111111111111111111111"), at: 2)
      rs["rules"] = .array(list)
      cf.rulesets[zid]!["http_request_cache_settings"] = rs
    }
    let quiet = rig.targets()
    #expect(rig.diff(quiet, try await rig.observe(quiet)).isEmpty)  // ours are unchanged and in order
    let changed = rig.with(
      decode(
        zoneYAML(
          "shop", zone: "shop.test", rules: [ruleA, ruleB.replacingOccurrences(of: "/api/*", with: "/api/v2/*")],
          workers: [workerW1])), files: files())
    let actions = try await changed.converge()
    #expect(actions.keys == ["shop:update:rules/cache"])
    rules = fake.rules("shop.test")
    #expect(rules.map { $0["ref"]?.string ?? "" } == ["manual-hls", "ytempire-a", "manual-between", "ytempire-b"])
    #expect(rules[3]["expression"] == #"starts_with(http.request.uri.path, "/api/v2/")"#)
    #expect(rules[0]["version"] == "1" && rules[2]["id"] == "11111111111111111111111111111111")
    #expect(fake.world { $0.scripts["legacy"] != nil && $0.buckets["archive"] != nil })
    #expect(fake.world { $0.routes[zid]?.contains { $0["script"] == "legacy" } } == true)
  }

  @Test("prune removes only what ytempire owns: a rule, a worker, a bucket, then a whole zone")
  func pruneOwnedOnly() async throws {
    let v1 = decode(
      zoneYAML("shop", zone: "shop.test", rules: [ruleA, ruleB, ruleC], workers: [workerW1, workerW2])
        + "---\n" + zoneYAML("media", zone: "media.test", replication: ["us-east", "eu-west"]))
    let fake = FakeCloudflare(seeding: v1)
    let zid = fake.zoneId("shop.test")
    let rig = Rig(resources: v1, files: files(), fake: fake)
    try await rig.converge()
    fake.world { cf in
      var rs = cf.rulesets[zid]!["http_request_cache_settings"]!
      rs["rules"] = .array([manualRule("manual-hls", id: "22222222222222222222222222222222")] + rs["rules"]!.array!)
      cf.rulesets[zid]!["http_request_cache_settings"] = rs
      cf.scripts["legacy"] = ["id": "legacy", "etag": "x"]
      cf.scriptContent["legacy"] = "addEventListener('fetch', e => {})"
      cf.routes[zid, default: []].append(["id": "feedfacefeedfacefeedfacefeedface", "pattern": "shop.test/legacy/*", "script": "legacy"])
      cf.buckets["archive"] = [
        "name": "archive", "creation_date": "2024-01-15T12:00:00.000Z", "location": "WNAM", "storage_class": "Standard",
      ]
    }

    // Rule b, worker w2 and bucket media-eu-west leave the repository.
    let v2 = rig.with(
      decode(
        zoneYAML("shop", zone: "shop.test", rules: [ruleA, ruleC], workers: [workerW1])
          + "---\n" + zoneYAML("media", zone: "media.test", replication: ["us-east"])), files: files())
    let t = v2.targets()
    fake.reset()
    let s = try await v2.observe(t)
    #expect(fake.operations == v2.driver.observationCalls(t, pricing: v2.pricing).map(\.operation))
    let actions = v2.diff(t, s)
    #expect(
      actions.keys == [
        "media:delete:bucket/media-eu-west", "shop:delete:rules/cache/prune", "shop:delete:route/w2", "shop:delete:script/w2",
      ])
    _ = try await v2.apply(actions, s)
    #expect(fake.rules("shop.test").map { $0["ref"]?.string ?? "" } == ["manual-hls", "ytempire-a", "ytempire-c"])
    #expect(fake.world { Set($0.scripts.keys) } == ["legacy", "w1"])
    #expect(fake.world { Set(($0.routes[zid] ?? []).compactMap { $0["script"]?.string }) } == ["legacy", "w1"])
    #expect(fake.world { Set($0.buckets.keys) } == ["archive", "media-us-east"])
    #expect(v2.external("shop")["scripts/w2"] == nil && v2.external("shop")["routes/w2"] == nil)

    // Both zones leave: what is recorded goes, foreign things stay, settings are left as they are.
    let gone = v2.with([], files: files())
    let tg = gone.targets(gone: ["media", "shop"])
    fake.reset()
    let sg = try await gone.observe(tg)
    #expect(fake.operations == gone.driver.observationCalls(tg, pricing: gone.pricing).map(\.operation))
    #expect(!fake.operations.contains("zones.list"))  // the recorded zone id is used
    let deletes = gone.diff(tg, sg)
    #expect(deletes.allSatisfy { $0.operation == .delete })
    #expect(
      deletes.keys == [
        "media:delete:bucket/media-us-east", "shop:delete:rules/cache/prune", "shop:delete:rules/config/prune",
        "shop:delete:route/w1", "shop:delete:script/w1",
      ])
    _ = try await gone.apply(deletes, sg)
    #expect(fake.rules("shop.test").map { $0["ref"]?.string ?? "" } == ["manual-hls"])
    #expect(fake.rules("shop.test", "http_config_settings").isEmpty)
    #expect(fake.world { Set($0.scripts.keys) } == ["legacy"])
    #expect(fake.world { ($0.routes[zid] ?? []).compactMap { $0["script"]?.string } } == ["legacy"])
    #expect(fake.world { Set($0.buckets.keys) } == ["archive"])
    #expect(fake.world { $0.settings[zid]?["webp"]?["value"] } == "on")
    // Observed again: nothing owned is left, nothing to do.
    let tg2 = gone.targets(gone: ["media", "shop"])
    #expect(gone.diff(tg2, try await gone.observe(tg2)).isEmpty)
  }

  @Test("drift made in the dashboard is corrected; a bucket in the wrong place is reported")
  func driftCorrectedOrReported() async throws {
    let v = decode(
      zoneYAML("shop", zone: "shop.test", rules: [ruleA, ruleC], workers: [workerW1])
        + "---\n" + zoneYAML("media", zone: "media.test", replication: ["eu-west"]))
    let fake = FakeCloudflare(seeding: v)
    let zid = fake.zoneId("shop.test")
    let rig = Rig(resources: v, files: files(), fake: fake)
    try await rig.converge()
    fake.world { cf in
      var rs = cf.rulesets[zid]!["http_request_cache_settings"]!
      var list = rs["rules"]!.array!
      list[0]["action_parameters"]?["edge_ttl"]?["default"] = 60
      rs["rules"] = .array(list)
      cf.rulesets[zid]!["http_request_cache_settings"] = rs
      cf.settings[zid]?["webp"]?["value"] = "off"
      cf.routes[zid] = []
      cf.scriptContent["w1"] = "addEventListener('fetch', e => {}) // edited in the dashboard"
      cf.buckets["media-eu-west"]?["location"] = "WNAM"
    }
    let t = rig.targets()
    let s = try await rig.observe(t)
    let fix = rig.diff(t, s)
    #expect(fix.keys == ["shop:update:rules/cache", "shop:update:setting/webp", "shop:update:script/w1", "shop:create:route/w1"])
    #expect(fix[0].changes == [FieldChange(path: "cacheRules.a.action_parameters.edge_ttl.default", old: 60, new: 86400)])
    #expect(fix[1].changes == [FieldChange(path: "settings.webp", old: "off", new: "on")])
    let media = t.first { $0.id.name == "media" }!
    let findings = rig.driver.findings(
      DiffInput(id: media.id, desired: media.desired, observed: s[media.id]!, external: [:], pricing: rig.pricing), now: Date())
    #expect(findings.map(\.condition) == [.storageLocationMismatch])
    #expect(findings.first?.message.contains("media-eu-west is in wnam, not weur") == true)
    #expect(rig.driver.findingTypes == [.storageLocationMismatch])
    let fixed = try await rig.apply(fix, s)
    #expect(rig.diff(t, fixed).isEmpty)
    let t2 = rig.targets()
    #expect(rig.diff(t2, try await rig.observe(t2)).isEmpty)
    #expect(fake.world { $0.scriptContent["w1"] } == scripts["w/w1.js"])
  }

  @Test("a concurrent edit between the re-read and the write is detected; one before the re-read is kept")
  func concurrentEdit() async throws {
    let v = decode(zoneYAML("shop", zone: "shop.test", rules: [ruleA]))
    let fake = FakeCloudflare(seeding: v)
    let zid = fake.zoneId("shop.test")
    let rig = Rig(resources: v, files: files(), fake: fake)
    try await rig.converge()
    let next = rig.with(decode(zoneYAML("shop", zone: "shop.test", rules: [ruleA, ruleB])), files: files())
    let t = next.targets()
    let s = try await next.observe(t)
    let actions = next.diff(t, s)
    #expect(actions.keys == ["shop:update:rules/cache"])

    // Someone adds a rule after the plan was made: the write is merged onto it.
    func addManual(_ ref: String, _ id: String) {
      fake.world { cf in
        var rs = cf.rulesets[zid]!["http_request_cache_settings"]!
        rs["rules"] = .array(rs["rules"]!.array! + [manualRule(ref, id: id)])
        rs["version"] = .string(String(Int(rs["version"]!.string!)! + 1))
        cf.rulesets[zid]!["http_request_cache_settings"] = rs
      }
    }
    addManual("manual-early", "33333333333333333333333333333333")
    let after = try await next.apply(actions, s)
    #expect(fake.rules("shop.test").map { $0["ref"]?.string ?? "" } == ["manual-fonts", "ytempire-a", "ytempire-b", "manual-early"])
    #expect(next.logs.withLock { $0.contains { $0.contains("changed since it was observed") } })
    #expect(next.diff(t, after).isEmpty)

    // Someone writes between ytempire's re-read and its PUT: reported, never silent.
    let third = next.with(decode(zoneYAML("shop", zone: "shop.test", rules: [ruleA])), files: files())
    let t3 = third.targets()
    let s3 = try await third.observe(t3)
    let prune = third.diff(t3, s3)
    #expect(prune.keys == ["shop:delete:rules/cache/prune"])
    fake.beforeSend.withLock {
      $0 = { call, core in
        guard call.operation == "rulesets.update" else { return }
        core.world.withLock { w in
          var rs = w.cloudflare.rulesets[zid]!["http_request_cache_settings"]!
          rs["version"] = .string(String(Int(rs["version"]!.string!)! + 1))
          w.cloudflare.rulesets[zid]!["http_request_cache_settings"] = rs
        }
      }
    }
    await #expect {
      _ = try await third.apply(prune, s3)
    } throws: { e in
      let d = "\(e)"
      return (e as? CloudflareError)?.reason == "concurrentEdit" && (e as? CloudflareError)?.category == .conflict
        && d.contains("another write happened") && d.contains("plan again")
    }
  }

  @Test("each error shape of the API becomes a clear message without the token")
  func errorShapes() async throws {
    let v = decode(
      zoneYAML("shop", zone: "shop.test", rules: [ruleC], workers: [workerW1]) + "---\n"
        + zoneYAML("media", zone: "media.test", replication: ["us-east"]))
    struct Case {
      var operation: String
      var response: HTTPResponse
      var expect: [String]
    }
    let cases: [Case] = [
      Case(
        operation: "zones.list", response: cloudflareError(400, 9106, "Missing X-Auth-Key, X-Auth-Email or Authorization headers"),
        expect: ["zones.list for shop: HTTP 400 code 9106: Missing X-Auth-Key", "no API token was sent"]),
      Case(
        operation: "rulesets.get", response: cloudflareError(403, 10000, "Authentication error"),
        expect: ["rulesets.get for shop: HTTP 403 code 10000: Authentication error", "may not act on this account"]),
      Case(
        operation: "routes.list", response: cloudflareError(429, 971, "Please wait and consider throttling your request speed"),
        expect: ["HTTP 429 code 971", "blocked for five minutes"]),
      Case(
        operation: "scripts.content", response: cloudflareError(500, 10013, "An unknown error has occurred"),
        expect: ["scripts.content for shop: HTTP 500 code 10013: An unknown error has occurred"]),
      Case(
        operation: "buckets.get",
        response: HTTPResponse(status: 502, headers: ["Content-Type": "text/html"], body: Array("<html>Bad gateway</html>".utf8)),
        expect: ["buckets.get for media: HTTP 502: the answer is not Cloudflare's JSON envelope"]),
      Case(
        operation: "settings.get", response: cloudflareError(400, 1006, "Unrecognized zone setting name \(Rig.token)"),
        expect: ["code 1006", "[redacted]"]),
    ]
    for c in cases {
      let fake = FakeCloudflare(seeding: v)
      let rig = Rig(resources: v, files: files(), fake: fake)
      let op = c.operation
      let response = c.response
      fake.override.withLock { $0 = { _, call in call.operation == op ? response : nil } }
      let out = try await rig.driver.observe(rig.targets(), context: rig.context)
      let messages = out.values.compactMap { o -> String? in if case .failed(let m) = o { m } else { nil } }
      #expect(!messages.isEmpty, "\(op)")
      for e in c.expect { #expect(messages.contains { $0.contains(e) }, "\(op): \(messages) lacks \(e)") }
      #expect(!messages.contains { $0.contains(Rig.token) })
    }

    // Unknown token, unknown zone: the emulator's own answers.
    let bad = Rig(resources: v, files: files(), fake: FakeCloudflare(seeding: v), token: "not-the-token")
    let out = try await bad.driver.observe(bad.targets(), context: bad.context)
    guard case .failed(let m)? = out[ResourceID(.cdnZone, "shop")] else {
      Issue.record("expected a failure")
      return
    }
    #expect(
      m.contains("HTTP 403 code 9109: Invalid access token") && m.contains("check integrations.cloudflare.token")
        && !m.contains("not-the-token"))
    let unknown = Rig(resources: v, files: files(), fake: FakeCloudflare(seeding: []))
    let out2 = try await unknown.driver.observe(unknown.targets(), context: unknown.context)
    guard case .failed(let m2)? = out2[ResourceID(.cdnZone, "shop")] else {
      Issue.record("expected a failure")
      return
    }
    #expect(m2.contains("zoneNotFound: no zone named shop.test is visible to the API token"))

    // Writes: the emulator rejects a module script uploaded as a service worker (10021),
    // a taken route pattern (10020), a bucket that exists (10004).
    let module = ["w/w1.js": "export default { fetch() { return new Response('x') } }\n"]
    let rig = Rig(resources: v, files: files(module), fake: FakeCloudflare(seeding: v))
    let t = rig.targets()
    let s = try await rig.observe(t)
    let actions = rig.diff(t, s)
    let upload = try #require(actions.first { $0.key == "script/w1" })
    await #expect {
      _ = try await rig.driver.apply(upload, observed: s[upload.resource]!, external: rig.external("shop"), context: rig.context)
    } throws: { e in
      "\(e)".contains("scripts.upload for shop: HTTP 400 code 10021: Uncaught SyntaxError")
        && "\(e)".contains("Cloudflare rejected the script")
    }
    let ok = Rig(resources: v, files: files(), fake: FakeCloudflare(seeding: v))
    let t2 = ok.targets()
    let s2 = try await ok.observe(t2)
    let a2 = ok.diff(t2, s2)
    _ = try await ok.apply(a2.filter { $0.key == "script/w1" }, s2)
    let zid = ok.fake.zoneId("shop.test")
    ok.fake.world { cf in cf.routes[zid] = [["id": "abababababababababababababababab", "pattern": "shop.test/w1/*", "script": .null]] }
    ok.fake.override.withLock {
      $0 = { r, call in
        call.operation == "routes.create" ? cloudflareError(409, 10020, "A route with the same pattern already exists.") : nil
      }
    }
    let route = try #require(a2.first { $0.key == "route/w1" })
    await #expect { _ = try await ok.driver.apply(route, observed: s2[route.resource]!, external: [:], context: ok.context) } throws: { e in
      "\(e)".contains("routes.create for shop: HTTP 409 code 10020") && "\(e)".contains("another route already has this pattern")
    }
    ok.fake.override.withLock { $0 = nil }
    ok.fake.world { cf in cf.buckets["media-us-east"] = ["name": "media-us-east", "location": "ENAM"] }
    let bucket = try #require(a2.first { $0.key == "bucket/media-us-east" })
    await #expect { _ = try await ok.driver.apply(bucket, observed: s2[bucket.resource]!, external: [:], context: ok.context) } throws: {
      e in
      "\(e)".contains("buckets.create for media: HTTP 409 code 10004: The bucket you tried to create already exists")
    }
  }

  @Test("a resource that left the repository whose zone is gone from Cloudflare observes as nothing")
  func zoneGone() async throws {
    let v = decode(zoneYAML("shop", zone: "shop.test", rules: [ruleA]))
    let fake = FakeCloudflare(seeding: v)
    let rig = Rig(resources: v, files: files(), fake: fake)
    try await rig.converge()
    #expect(rig.external("shop")["cloudflareZoneId"] == fake.zoneId("shop.test"))
    fake.world { cf in
      cf.zones = [:]
      cf.zoneOrder = []
    }
    let gone = rig.with([], files: files())
    let t = gone.targets(gone: ["shop"])
    let s = try await gone.observe(t)
    #expect(s[ResourceID(.cdnZone, "shop")] == .null)
    #expect(gone.diff(t, s).isEmpty)
    // Still desired, it is an error that says so.
    let out = try await rig.driver.observe(rig.targets(), context: rig.context)
    guard case .failed(let m)? = out[ResourceID(.cdnZone, "shop")] else {
      Issue.record("expected a failure")
      return
    }
    #expect(m.contains("zoneNotFound"))
  }

  @Test("what Cloudflare cannot express fails the observation, with no calls")
  func inexpressible() async throws {
    let v = decode(
      zoneYAML("media", zone: "media.test", replication: ["mars-north"]) + "---\n"
        + zoneYAML("shop", zone: "shop.test", workers: [#"{name: w9, route: "shop.test/*", scriptFile: w/missing.js}"#]))
    let rig = Rig(resources: v, files: files(), fake: FakeCloudflare(seeding: v))
    #expect(rig.driver.observationCalls(rig.targets(), pricing: rig.pricing).isEmpty)
    let out = try await rig.driver.observe(rig.targets(), context: rig.context)
    guard case .failed(let m1)? = out[ResourceID(.cdnZone, "media")], case .failed(let m2)? = out[ResourceID(.cdnZone, "shop")] else {
      Issue.record("expected failures: \(out)")
      return
    }
    #expect(m1.contains("replication region 'mars-north' has no R2 location hint"))
    #expect(m2.contains("worker w9: the revision has no file w/missing.js"))
    #expect(rig.fake.operations.isEmpty)
  }

  @Test("rule expressions from the match globs, and route validation")
  func expressionsAndRoutes() {
    #expect(Canonical.expression(["*.mp4"]) == #"http.request.uri.path.extension eq "mp4""#)
    #expect(
      Canonical.expression(["/hls/*", "*.ts", "*.m3u8", "*.thumbnail.jpg", "/live"])
        == #"starts_with(http.request.uri.path, "/hls/") or http.request.uri.path.extension in {"ts" "m3u8"} or ends_with(http.request.uri.path, ".thumbnail.jpg") or http.request.uri.path eq "/live""#
    )
    #expect(Canonical.quote(#"a"b\c"#) == #""a\"b\\c""#)
    #expect(WorkerRoute.problem("*ytempire.com/*", zone: "ytempire.com") == nil)
    #expect(WorkerRoute.problem("*.ytempire.com/img/*", zone: "ytempire.com") == nil)
    #expect(WorkerRoute.problem("cdn.ytempire.com/video/*", zone: "ytempire.com") == nil)
    #expect(WorkerRoute.problem("*.thumbnail.jpg", zone: "ytempire.com")?.contains("host/path") == true)
    #expect(WorkerRoute.problem("/video/*", zone: "ytempire.com")?.contains("host/path") == true)
    #expect(WorkerRoute.problem("ytempire.com/*.jpg", zone: "ytempire.com")?.contains("only end the path") == true)
    #expect(WorkerRoute.problem("cdn.*.ytempire.com/*", zone: "ytempire.com")?.contains("only start the host") == true)
    #expect(WorkerRoute.problem("example.org/*", zone: "ytempire.com")?.contains("not in the zone") == true)
    #expect(WorkerRoute.problem("https://ytempire.com/*", zone: "ytempire.com")?.contains("scheme") == true)
  }

  @Test("merging a phase keeps foreign rules in place and puts new owned rules after their predecessor")
  func mergeOrder() {
    func r(_ ref: String, _ id: String? = nil) -> JSONValue {
      var o: [String: JSONValue] = ["ref": .string(ref), "expression": "true", "action": "set_cache_settings"]
      if let id {
        o["id"] = .string(id)
        o["version"] = "2"
        o["last_updated"] = "x"
      }
      return .object(o)
    }
    let current = [r("manual-1", "m1"), r("ytempire-a", "a"), r("manual-2", "m2"), r("ytempire-c", "c")]
    let merged = Canonical.merge(current, set: [r("ytempire-new0"), r("ytempire-a"), r("ytempire-b"), r("ytempire-c")], remove: [])
    #expect(merged.map { $0["ref"]?.string ?? "" } == ["manual-1", "ytempire-new0", "ytempire-a", "ytempire-b", "manual-2", "ytempire-c"])
    #expect(merged.map { $0["id"]?.string ?? "-" } == ["m1", "-", "a", "-", "m2", "c"])
    #expect(merged.allSatisfy { $0["version"] == nil && $0["last_updated"] == nil })
    let reordered = Canonical.merge(current, set: [r("ytempire-c"), r("ytempire-a")], remove: [])
    #expect(reordered.map { $0["ref"]?.string ?? "" } == ["manual-1", "ytempire-c", "manual-2", "ytempire-a"])
    let pruned = Canonical.merge(current, set: nil, remove: ["ytempire-a"])
    #expect(pruned.map { $0["ref"]?.string ?? "" } == ["manual-1", "manual-2", "ytempire-c"])
    #expect(
      Canonical.merge([r("manual-1", "m1")], set: [r("ytempire-a")], remove: []).map { $0["ref"]?.string ?? "" } == [
        "manual-1", "ytempire-a",
      ])
  }
}
