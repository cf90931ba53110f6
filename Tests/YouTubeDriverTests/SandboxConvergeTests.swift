import CurlHTTP
import DriverKit
import EmpireModel
import Foundation
import Resilience
import Sandbox
import Synchronization
import TestSupport
import Testing

@testable import YouTubeDriver

/// The driver over the real client stack (CurlHTTPClient → ResilientHTTP → ResilientServiceClient)
/// against the in-process sandbox seeded from examples/empire.
final class SandboxRig: Sendable {
  let sb: SandboxServer
  let http = CurlHTTPClient()
  let ledger: QuotaLedger
  let context: DriverContext
  let driver: YouTubeDriver
  let cache = MemoryCache()
  let index = Example.index
  let loop: DriverLoop<YouTubeDriver>

  init(_ sb: SandboxServer) throws {
    self.sb = sb
    let pricing = Pricing(index)
    let spec = index.resource(.rateLimit, "youtube-api")!.rateLimit!
    var quota = spec.quota!
    // Predictive spacing would pace these calls over the day; the test wants them now.
    quota.predictive = false
    ledger = try QuotaLedger(service: "youtube-api", quota: quota, channels: index.all(.channel).map(\.name))
    let breakers = BreakerRegistry()
    let youtube = ResilientServiceClient(
      ResilientHTTP(http: http, limits: ServiceLimits(spec: spec, service: "youtube", ledger: ledger), breakers: breakers))
    let oauth = ResilientServiceClient(ResilientHTTP(http: http, limits: ServiceLimits(spec: nil, service: "oauth"), breakers: breakers))
    let refresh = Dictionary(sb.seed.channels.map { ($0.credentials, $0.refreshToken) }, uniquingKeysWith: { a, _ in a })
    let creds = sb.credentials
    let config = YouTubeDriverConfig(
      endpoint: sb.youtubeURL, tokenEndpoint: sb.tokenURL,
      clientId: .literal("integrations.youtube.clientId", creds.youtubeClientId),
      clientSecret: .literal("integrations.youtube.clientSecret", creds.youtubeClientSecret),
      credentials: { name in refresh[name].map { .literal("secrets.\(name)", $0) } }, cache: cache)
    driver = YouTubeDriver(config: config)
    loop = DriverLoop(driver)
    context = DriverContext(desired: index, pricing: pricing, cache: cache, client: { $0 == "oauth" ? oauth : youtube })
  }

  func targets(desired: Bool = true, only: String? = nil) -> [ObserveTarget] {
    let ext = loop.externals.withLock { $0 }
    return index.all(.channel).filter { only == nil || $0.name == only }.map { r in
      ObserveTarget(
        id: ResourceID(r), desired: desired ? driver.desired(r, in: index) : Optional<JSONValue>.none, external: ext[ResourceID(r)] ?? [:])
    }
  }

  func observe(_ targets: [ObserveTarget]) async throws -> [ResourceID: JSONValue] { try await loop.observe(targets, context: context) }

  func diff(_ targets: [ObserveTarget], _ states: [ResourceID: JSONValue]) -> [Action] {
    loop.diff(targets, states, pricing: context.pricing)
  }

  func apply(_ actions: [Action], _ states: [ResourceID: JSONValue]) async throws -> [ResourceID: JSONValue] {
    try await loop.apply(actions, states, context: context)
  }

  func count(_ key: String) -> Int { sb.callCounts[key] ?? 0 }

  func admin(_ method: String, _ path: String, _ body: JSONValue? = nil) async throws -> HTTPResponse {
    try await http.execute(
      HTTPRequest(
        method: method, url: sb.adminURL + path, headers: ["Content-Type": "application/json"],
        body: body?.canonicalBytes))
  }
}

@Suite("YouTubeDriver against the sandbox")
struct YouTubeSandboxTests {
  static func withSandbox(_ body: (SandboxRig) async throws -> Void) async throws {
    var o = SandboxOptions()
    o.seedFrom = Repo.examples
    let sb = try await SandboxServer.start(o)
    do {
      try await body(try SandboxRig(sb))
    } catch {
      await sb.stop()
      throw error
    }
    await sb.stop()
  }

  @Test("converge the example's three channels, then correct a drift, with exact call counts and quota")
  func convergeAndDrift() async throws {
    try await Self.withSandbox { rig in
      let targets = rig.targets()
      var planned = rig.driver.observationCalls(targets, pricing: rig.context.pricing).reduce(0) { $0 + $1.units }
      // One channels.list for the three, one playlists.list each, and once per credential
      // `channels.list?mine=true` to learn which channel it acts for.
      #expect(planned == 4 + 3)

      let observed = try await rig.observe(targets)
      #expect(rig.count("youtube GET /youtube/v3/channels") == 1 + 3)
      #expect(rig.count("youtube GET /youtube/v3/playlists") == 3)
      #expect(rig.count("oauth POST /token") == 3)

      let actions = rig.diff(targets, observed)
      #expect(
        actions.keys() == [
          "finance-focus:update:branding", "finance-focus:update:playlist/market-minute", "finance-focus:create:playlist/money-basics",
          "science-simplified:update:branding", "science-simplified:create:playlist/everyday-physics",
          "tech-daily:update:branding", "tech-daily:update:playlist/ai-explained", "tech-daily:create:playlist/gadget-reviews",
          "tech-daily:create:playlist/shorts-backlog",
        ])
      // The seed: an older description, the last keyword missing, no trailer.
      let tech = actions.first { $0.resource.name == "tech-daily" && $0.key == "branding" }!
      #expect(tech.changes.map(\.path) == ["branding.description", "branding.keywords", "branding.unsubscribedTrailer"])
      let science = actions.first { $0.resource.name == "science-simplified" && $0.key == "branding" }!
      #expect(science.changes.map(\.path) == ["branding.description", "branding.keywords"])
      // The seeded first playlists were adopted by title (space-in-ten already matches: adopted, no action).
      for name in ["tech-daily", "finance-focus", "science-simplified"] {
        let ext = rig.loop.externals.withLock { $0[ResourceID(.channel, name)] ?? [:] }
        #expect(ext.keys.filter { $0.hasPrefix("playlists/") }.count == 1, "\(name)")
      }
      for a in actions where a.key.hasPrefix("playlist/") && a.operation == .update {
        #expect(rig.loop.externals.withLock { $0[a.resource]?["playlists/" + a.payload["name"]!.string!] } == a.payload["id"]?.string)
      }
      for a in actions {
        #expect(!a.payload.canonicalString.contains("sandbox-refresh") && !a.payload.canonicalString.contains("sandbox-client-secret"))
      }
      planned += actions.reduce(0) { $0 + $1.units }
      #expect(planned == 4 + 3 + 3 * 50 + 2 * 50 + 4 * 50)

      let applied = try await rig.apply(actions, observed)
      #expect(rig.count("youtube PUT /youtube/v3/channels") == 3)
      #expect(rig.count("youtube POST /youtube/v3/playlists") == 4)
      #expect(rig.count("youtube PUT /youtube/v3/playlists") == 2)
      #expect(rig.count("youtube DELETE /youtube/v3/playlists") == 0)
      #expect(rig.count("oauth POST /token") == 3)  // tokens cached across observe and apply
      // The states apply returned plan no further change without observing again …
      #expect(rig.diff(targets, applied).isEmpty)
      // … and neither does a fresh observation with the recorded ids.
      let targets2 = rig.targets()
      planned += rig.driver.observationCalls(targets2, pricing: rig.context.pricing).reduce(0) { $0 + $1.units }
      let again = try await rig.observe(targets2)
      #expect(rig.diff(targets2, again).isEmpty)
      // The credentials' channels are remembered: not asked again.
      #expect(rig.count("youtube GET /youtube/v3/channels") == 1 + 3 + 1)
      #expect(rig.sb.youtubeQuotaUsed == planned)
      #expect(rig.ledger.snapshot.spent == planned)
      for (id, s) in again { #expect(s == applied[id], "\(id)") }

      // Drift: someone edits a description in YouTube Studio.
      let techId = "UCPtYgjmUhBel31iEl2hpChY"
      let patch = try await rig.admin(
        "PATCH", "/state/youtube/channels/\(techId)",
        ["brandingSettings": ["channel": ["description": "Edited in YouTube Studio"]]])
      #expect(patch.status == 200)
      planned += rig.driver.observationCalls(targets2, pricing: rig.context.pricing).reduce(0) { $0 + $1.units }
      let drifted = try await rig.observe(targets2)
      let fix = rig.diff(targets2, drifted)
      #expect(fix.keys() == ["tech-daily:update:branding"])
      #expect(
        fix.first?.changes == [
          FieldChange(
            path: "branding.description", old: "Edited in YouTube Studio",
            new: rig.index.resource(.channel, "tech-daily")!.channel!.branding.description.map(JSONValue.string))
        ])
      planned += fix.reduce(0) { $0 + $1.units }
      let fixed = try await rig.apply(fix, drifted)
      #expect(rig.diff(targets2, fixed).isEmpty)
      #expect(rig.count("youtube PUT /youtube/v3/channels") == 4)
      // The unmanaged banner image the sandbox seeded survived both whole-part updates.
      let state = try await rig.admin("GET", "/state/youtube/channels/\(techId)/brandingSettings")
      let bs = try JSONValue.parse(state.body)
      #expect(bs["image"]?["bannerExternalUrl"]?.string?.hasPrefix("https://yt3.ggpht.com/sandbox/") == true)
      #expect(rig.sb.youtubeQuotaUsed == planned)
      #expect(rig.ledger.snapshot.spent == planned)

      // A Channel that leaves the repository: its recorded playlists go, nothing else.
      let calls = try JSONValue.parse(try await rig.admin("GET", "/calls").body)
      #expect(calls["calls"]?["youtube DELETE /youtube/v3/playlists"] == nil)
      let leaving = rig.targets(desired: false, only: "science-simplified")
      planned += rig.driver.observationCalls(leaving, pricing: rig.context.pricing).reduce(0) { $0 + $1.units }
      let leftState = try await rig.observe(leaving)
      let deletes = rig.diff(leaving, leftState)
      planned += deletes.reduce(0) { $0 + $1.units }
      #expect(deletes.keys() == ["science-simplified:delete:playlist/everyday-physics", "science-simplified:delete:playlist/space-in-ten"])
      let after = try await rig.apply(deletes, leftState)
      #expect(rig.count("youtube DELETE /youtube/v3/playlists") == 2)
      #expect(after[leaving[0].id]?["playlists"] == [:])
      #expect(rig.loop.externals.withLock { $0[leaving[0].id] ?? [:] }.keys.filter { $0.hasPrefix("playlists/") }.isEmpty)
      #expect(rig.sb.youtubeQuotaUsed == planned)
      // Applying a delete again (a retried plan): the 404 through the resilient stack means done.
      let again2 = try await rig.driver.apply(deletes[0], observed: after[leaving[0].id]!, external: [:], context: rig.context)
      #expect(again2.external["playlists/everyday-physics"] == .some(nil))
      #expect(rig.count("youtube DELETE /youtube/v3/playlists") == 3)
    }
  }

  @Test("a stale cached token meets a real 401 through the resilient stack: refreshed once, call retried once")
  func staleTokenThroughResilientStack() async throws {
    try await Self.withSandbox { rig in
      try rig.cache.setValue("youtube.token.youtube-tech-daily", "ya29.revoked-long-ago", expires: Date().addingTimeInterval(3000))
      let observed = try await rig.observe(rig.targets(only: "tech-daily"))
      #expect(observed.count == 1)
      // The 401, then the retry; then which channel the credentials act for (with the fresh token).
      #expect(rig.count("youtube GET /youtube/v3/channels") == 3)
      #expect(rig.count("oauth POST /token") == 1)
      let cached = try #require(try rig.cache.value("youtube.token.youtube-tech-daily"))
      #expect(cached.value != "ya29.revoked-long-ago")

      // A refresh token the sandbox does not know: a clear error with OAuth's reason and no secret.
      try rig.cache.setValue("youtube.token.youtube-finance-focus", nil, expires: nil)
      var known = try JSONValue.parse(try await rig.admin("GET", "/state/youtube/refreshTokens").body).object ?? [:]
      #expect(known.removeValue(forKey: "1//sandbox-refresh-finance-focus") != nil)
      #expect(try await rig.admin("PUT", "/state/youtube/refreshTokens", .object(known)).status < 300)
      let out = try await rig.driver.observe(rig.targets(only: "finance-focus"), context: rig.context)
      guard case .failed(let m)? = out[ResourceID(.channel, "finance-focus")] else {
        Issue.record("expected a failure, got \(out)")
        return
      }
      #expect(m.contains("invalid_grant"))
      #expect(!m.contains("sandbox-refresh") && !m.contains("sandbox-client-secret"))
    }
  }
}
