import CurlHTTP
import DriverKit
import EmpireModel
import Foundation
import TestSupport
import Testing

@testable import YouTubeDriver

/// `count` channels governed by youtube-api (plus the example's youtube-api RateLimit).
func manyChannels(_ count: Int) -> [Resource] {
  let rl = (try? String(contentsOfFile: Repo.examples + "/ratelimits/youtube-api.yaml", encoding: .utf8)) ?? ""
  var docs = [rl]
  for i in 1...count {
    let id = "UC" + String(format: "%022d", i)
    docs.append(
      """
      apiVersion: ytempire.io/v1
      kind: Channel
      metadata: {name: ch-\(String(format: "%03d", i))}
      spec:
        youtube: {channelId: \(id), credentials: yt-ch-\(i)}
        branding: {title: Channel \(i)}
        rateLimit: youtube-api
      """)
  }
  return decode(docs.joined(separator: "\n---\n"))
}

@Suite("YouTubeDriver over a fake client")
struct YouTubeDriverUnitTests {
  @Test("the driver's names and kinds")
  func identity() {
    let d = YouTubeDriver(config: Rig.config())
    #expect(d.name == "youtube")
    #expect(d.kinds == [.channel])
    #expect(d.displayName == "YouTube")
  }

  @Test("desired form: canonical lists, omitted fields absent, no marks and no secrets")
  func desiredForm() {
    let rig = Rig()
    let d = rig.desired("tech-daily")
    #expect(d["channelId"] == "UCPtYgjmUhBel31iEl2hpChY")
    #expect(d["credentials"] == "youtube-tech-daily")
    #expect(d["rateLimit"] == "youtube-api")
    #expect(d["branding"]?["keywords"] == ["ai news", "gadgets", "machine learning", "software", "tech"])
    #expect(d["playlists"]?["gadget-reviews"] == ["title": "Gadget Reviews", "privacy": "public", "tags": ["gadgets", "reviews"]])
    #expect(d["playlists"]?["ai-explained"]?["tags"] == ["ai", "machine learning"])
    let finance = rig.desired("finance-focus")
    #expect(finance["branding"]?["unsubscribedTrailer"] == nil)
    #expect(finance["playlists"]?["money-basics"]?["description"] == nil)
    // Deterministic and free of source positions: the same resource decoded twice renders the same bytes.
    let again = YouTubeDriver(config: Rig.config()).desired(Rig().index.resource(.channel, "tech-daily")!, in: rig.index)
    #expect(again.canonicalString == d.canonicalString)
    #expect(!d.canonicalString.contains("refresh-"))
    #expect(!d.canonicalString.contains(".yaml"))
  }

  @Test("120 channels are observed with 3 channels.list calls of at most 50 ids, each paid by its batch's first channel")
  func batching() async throws {
    let rig = Rig(resources: manyChannels(120))
    rig.seedChannels()
    let targets = rig.targets()
    let planned = rig.driver.observationCalls(targets, pricing: rig.pricing)
    let states = try await rig.observe(targets)
    #expect(states.count == 120)
    let lists = rig.fake.seen.filter { $0.operation == "channels.list" }
    #expect(lists.count == 3)
    // The batches are observed concurrently: their order on the wire is not fixed.
    let batches = lists.map { ($0.call.channel ?? "", $0.query["id"]!.split(separator: ",").count) }.sorted { $0.0 < $1.0 }
    #expect(batches.map(\.1) == [50, 50, 20])
    #expect(batches.map(\.0) == ["ch-001", "ch-051", "ch-101"])
    #expect(lists.allSatisfy { $0.call.units == 1 && $0.call.quota == "youtube-api" && $0.query["part"] == "brandingSettings" })
    #expect(rig.fake.count("playlists.list") == 120)
    // What observe spent is exactly what observationCalls priced.
    let made = rig.fake.seen.filter { $0.service == "youtube" }.map(\.call)
    #expect(made.count == planned.count)
    #expect(Set(made) == Set(planned))
    #expect(planned.reduce(0) { $0 + $1.units } == 123)
    #expect(states[ResourceID(.channel, "ch-077")]?["branding"]?["title"] == "Channel 77")

    // A Channel that left the repository never pays for a batch: it has no reservation left.
    var mixed = rig.targets()
    mixed[0] = ObserveTarget(
      id: mixed[0].id, desired: nil,
      external: ["youtubeChannelId": mixed[0].desired!["channelId"]!.string!, "youtubeCredentials": "yt-ch-1"])
    let payers = rig.driver.observationCalls(mixed, pricing: rig.pricing).filter { $0.operation == "channels.list" }.map(\.channel)
    #expect(payers == ["ch-002", "ch-052", "ch-102"])
  }

  @Test("playlists are paged 50 at a time through nextPageToken")
  func paging() async throws {
    let rig = Rig()
    rig.seedChannels()
    let cid = "UCPtYgjmUhBel31iEl2hpChY"
    for i in 0..<120 { rig.fake.addPlaylist(cid, title: i == 109 ? "AI Explained" : "Other \(i)") }
    let states = try await rig.observe(rig.targets(["tech-daily"]))
    let pages = rig.fake.seen.filter { $0.operation == "playlists.list" }
    #expect(pages.map { $0.query["pageToken"] } == [nil, "page50", "page100"])
    #expect(
      pages.allSatisfy {
        $0.query["maxResults"] == "50" && $0.query["channelId"] == cid && $0.query["part"] == "snippet,status,contentDetails"
      })
    // The 110th playlist, on the third page, was found and adopted.
    let adopted = rig.external("tech-daily")["playlists/ai-explained"]
    #expect(adopted == "PLfake110")
    #expect(states[ResourceID(.channel, "tech-daily")]?["playlists"]?.object?.keys.sorted() == ["ai-explained"])
  }

  @Test("keywords compare order- and quoting-insensitively: no perpetual diff")
  func keywordCanonicalisation() async throws {
    let rig = Rig()
    rig.seedChannels()
    // The same keywords, reordered, one needlessly quoted, one repeated.
    rig.fake.addChannel(
      "UCPtYgjmUhBel31iEl2hpChY",
      branding: [
        "title": "Tech Daily",
        "description": .string(rig.index.resource(.channel, "tech-daily")!.channel!.branding.description!),
        "keywords": "software \"machine learning\" gadgets \"ai news\" \"tech\" tech",
        "defaultLanguage": "en", "country": "US", "unsubscribedTrailer": "Xk3pQ9vL2mA",
      ])
    let t = rig.targets(["tech-daily"])[0]
    let observed = try await rig.observe([t])[t.id]!
    #expect(observed["branding"]?["keywords"] == ["ai news", "gadgets", "machine learning", "software", "tech"])
    #expect(rig.diff(t, observed).filter { $0.key == "branding" }.isEmpty)

    // One keyword missing: exactly one change, and the part is sent as one quoted string.
    rig.fake.addChannel(
      "UCPtYgjmUhBel31iEl2hpChY",
      branding: [
        "title": "Tech Daily",
        "description": .string(rig.index.resource(.channel, "tech-daily")!.channel!.branding.description!),
        "keywords": "tech \"ai news\" gadgets software", "defaultLanguage": "en", "country": "US", "unsubscribedTrailer": "Xk3pQ9vL2mA",
      ])
    let observed2 = try await rig.observe([t])[t.id]!
    let branding = try #require(rig.diff(t, observed2).first { $0.key == "branding" })
    #expect(branding.changes.map(\.path) == ["branding.keywords"])
    #expect(branding.payload["brandingSettings"]?["channel"]?["keywords"] == "\"ai news\" gadgets \"machine learning\" software tech")
  }

  @Test("channels.update sends the whole brandingSettings part back: unmanaged fields survive")
  func wholePartMerge() async throws {
    let rig = Rig()
    let extra: [String: JSONValue] = [
      "watch": ["textColor": "#000000", "featuredPlaylistId": "PLwatch"],
      "image": ["bannerExternalUrl": "https://yt3.example/banner"],
    ]
    rig.seedChannels(extra: extra)
    let cid = "UCgCfrL1spNxnyVmihA-2O76"
    var ch = rig.fake.channelItem(cid)!["brandingSettings"]!["channel"]!.object!
    ch["description"] = "Edited in YouTube Studio"
    ch["trackingAnalyticsAccountId"] = "UA-12345-1"
    ch["unsubscribedTrailer"] = "abcdefghijk"  // not managed by the manifest: left as it is
    rig.fake.addChannel(cid, branding: .object(ch), extra: extra)
    let t = rig.targets(["finance-focus"])[0]
    let observed = try await rig.observe([t])
    let actions = rig.diff(t, observed[t.id]!).filter { $0.key == "branding" }
    #expect(actions.count == 1)
    #expect(actions[0].changes.map(\.path) == ["branding.description"])
    #expect(actions[0].calls.map(\.name) == ["youtube.channels.update"])
    #expect(actions[0].units == 50)

    let (_, states) = try await rig.applyAll([t], observed)
    let put = try #require(rig.fake.seen.first { $0.operation == "channels.update" })
    #expect(put.query["part"] == "brandingSettings")
    #expect(put.body?["id"] == .string(cid))
    let stored = rig.fake.channelItem(cid)!["brandingSettings"]!
    #expect(stored["watch"] == extra["watch"])
    #expect(stored["image"] == extra["image"])
    #expect(stored["channel"]?["trackingAnalyticsAccountId"] == "UA-12345-1")
    #expect(stored["channel"]?["unsubscribedTrailer"] == "abcdefghijk")
    #expect(stored["channel"]?["description"] == .string(rig.index.resource(.channel, "finance-focus")!.channel!.branding.description!))
    // The applied state diffs clean without observing again, and so does a fresh observation.
    #expect(rig.diff(t, states[t.id]!).isEmpty)
    let again = try await rig.observe([t])
    #expect(rig.diff(t, again[t.id]!).isEmpty)
  }

  @Test("a desired playlist with no recorded id is adopted by exact title; unowned playlists are never touched")
  func adoptionAndUnowned() async throws {
    let rig = Rig()
    rig.seedChannels()
    let cid = "UCPtYgjmUhBel31iEl2hpChY"
    let mine = rig.fake.addPlaylist(cid, title: "AI Explained", description: "Older", tags: ["ai"])
    let handMade = rig.fake.addPlaylist(cid, title: "Hand-made compilation", description: "Not in git", privacy: "unlisted")
    let nearMiss = rig.fake.addPlaylist(cid, title: "ai explained", description: "Different case: no adoption")
    let before = [handMade: rig.fake.playlist(handMade)!, nearMiss: rig.fake.playlist(nearMiss)!]
    let t = rig.targets(["tech-daily"])[0]
    let observed = try await rig.observe([t])
    #expect(rig.external("tech-daily")["playlists/ai-explained"] == mine)
    #expect(rig.external("tech-daily")["youtubeChannelId"] == cid)
    #expect(observed[t.id]?["playlists"]?.object?.keys.sorted() == ["ai-explained"])

    let actions = rig.diff(t, observed[t.id]!)
    #expect(
      actions.keys() == [
        "tech-daily:update:playlist/ai-explained", "tech-daily:create:playlist/gadget-reviews",
        "tech-daily:create:playlist/shorts-backlog",
      ])
    let adopt = actions[0]
    #expect(adopt.payload["id"] == .string(mine))
    // Diffed before the adoption is recorded, the plan says it adopts.
    let unrecorded = rig.driver.diff(
      DiffInput(id: t.id, desired: t.desired, observed: observed[t.id]!, external: [:], pricing: rig.pricing))
    #expect(unrecorded[0].summary.contains("adopting \(mine)"))
    #expect(Set(adopt.changes.map(\.path)) == ["playlists.ai-explained.description", "playlists.ai-explained.tags"])

    let (applied, states) = try await rig.applyAll([t], observed)
    #expect(applied.count == 3)
    // The update sent id, title, description and tags; the creates got their own ids recorded.
    let update = try #require(rig.fake.seen.first { $0.operation == "playlists.update" })
    #expect(update.body?["id"] == .string(mine))
    #expect(update.body?["snippet"]?["title"] == "AI Explained")
    #expect(update.body?["snippet"]?["description"] == "How the models behind today's AI products actually work.")
    #expect(update.body?["snippet"]?["tags"] == ["ai", "machine learning"])
    let ext = rig.external("tech-daily")
    #expect(ext["playlists/gadget-reviews"]?.hasPrefix("PLnew") == true)
    #expect(ext["playlists/shorts-backlog"]?.hasPrefix("PLnew") == true)
    #expect(rig.fake.playlist(ext["playlists/shorts-backlog"]!)?["status"]?["privacyStatus"] == "private")

    // Nothing ever named the playlists ytempire does not own, and they are unchanged.
    for s in rig.fake.seen {
      let text = (s.body?.canonicalString ?? "") + (s.query["id"] ?? "")
      #expect(!text.contains(handMade) && !text.contains(nearMiss))
    }
    #expect(rig.fake.playlist(handMade) == before[handMade])
    #expect(rig.fake.playlist(nearMiss) == before[nearMiss])
    #expect(rig.diff(t, states[t.id]!).isEmpty)
    let again = try await rig.observe(rig.targets(["tech-daily"]))
    #expect(rig.diff(rig.targets(["tech-daily"])[0], again[t.id]!).isEmpty)
  }

  @Test("deletes only recorded ids: a dropped playlist, then every recorded one when the Channel leaves")
  func deletesOnlyRecorded() async throws {
    let rig = Rig()
    rig.seedChannels()
    let cid = "UCUMFxFkM-R5Kjp1vRt_1fjO"
    let handMade = rig.fake.addPlaylist(cid, title: "Space in Ten Minutes (fan edit)")
    let retired = rig.fake.addPlaylist(cid, title: "Retired series")
    let sameTitle = rig.fake.addPlaylist(cid, title: "Retired series")  // same title, never recorded
    rig.setExternal("science-simplified", "playlists/retired", retired)
    let t = rig.targets(["science-simplified"])[0]
    let observed = try await rig.observe([t])
    let (applied, _) = try await rig.applyAll([t], observed)
    #expect(applied.keys(.delete) == ["science-simplified:delete:playlist/retired"])
    #expect(applied.first { $0.operation == .delete }?.payload["id"] == .string(retired))
    #expect(rig.fake.playlist(retired) == nil)
    #expect(rig.fake.playlist(sameTitle) != nil)
    #expect(rig.external("science-simplified")["playlists/retired"] == nil)

    // The Channel leaves the repository: every recorded playlist goes, nothing else does, branding stays.
    let owned = rig.external("science-simplified").filter { $0.key.hasPrefix("playlists/") }
    #expect(owned.count == 2)
    let gone = rig.targets(["science-simplified"], desired: false)[0]
    #expect(gone.desired == nil)
    let observedGone = try await rig.observe([gone])
    let deletes = rig.diff(gone, observedGone[gone.id]!)
    #expect(deletes.allSatisfy { $0.operation == .delete })
    #expect(Set(deletes.map(\.key)) == Set(owned.keys.map { $0.replacingOccurrences(of: "playlists/", with: "playlist/") }))
    // One of them is deleted by hand between plan and apply: its 404 counts as done.
    rig.fake.removePlaylist(owned["playlists/everyday-physics"]!)
    var state = observedGone[gone.id]!
    for a in deletes {
      let outcome = try await rig.driver.apply(a, observed: state, external: rig.external("science-simplified"), context: rig.context)
      for (k, v) in outcome.external { rig.setExternal("science-simplified", k, v) }
      state = outcome.observed ?? state
    }
    #expect(rig.fake.seen.filter { $0.operation == "playlists.delete" }.count == 3)
    #expect(rig.external("science-simplified").filter { $0.key.hasPrefix("playlists/") }.isEmpty)
    #expect(state["playlists"] == [:])
    #expect(rig.fake.playlistIds(cid).sorted() == [handMade, sameTitle].sorted())
    #expect(rig.fake.count("channels.update") == 0)  // branding is never touched by deletes
  }

  @Test("calls are priced from the governing RateLimit's costs, never from code")
  func pricingFromCosts() async throws {
    let resources = decode(
      """
      apiVersion: ytempire.io/v1
      kind: RateLimit
      metadata: {name: yt-cheap}
      spec:
        service: youtube
        quota:
          units: 5000
          window: daily
          resetAt: "00:00"
          timezone: America/Los_Angeles
          costs: {channels.list: 2, playlists.list: 3, channels.update: 77, playlists.insert: 33, playlists.update: 44, playlists.delete: 55}
      ---
      apiVersion: ytempire.io/v1
      kind: Channel
      metadata: {name: priced}
      spec:
        youtube: {channelId: UCPtYgjmUhBel31iEl2hpChY, credentials: yt-priced}
        branding: {title: Priced, description: New text}
        playlists:
          - {name: fresh, title: Fresh}
          - {name: kept, title: Kept, description: new}
        rateLimit: yt-cheap
      """)
    let rig = Rig(resources: resources)
    rig.fake.addChannel("UCPtYgjmUhBel31iEl2hpChY", branding: ["title": "Priced", "description": "Old text"])
    rig.fake.addPlaylist("UCPtYgjmUhBel31iEl2hpChY", title: "Kept", description: "old")
    let t = rig.targets()[0]
    let planned = rig.driver.observationCalls([t], pricing: rig.pricing)
    #expect(
      planned == [
        PlannedCall(service: "youtube", operation: "channels.list", units: 2, quota: "yt-cheap", channel: "priced"),
        PlannedCall(service: "youtube", operation: "playlists.list", units: 3, quota: "yt-cheap", channel: "priced"),
      ])
    let observed = try await rig.observe([t])
    let actions = rig.diff(t, observed[t.id]!)
    #expect(actions.map { "\($0.key)=\($0.units)" } == ["branding=77", "playlist/fresh=33", "playlist/kept=44"])
    #expect(actions.allSatisfy { $0.calls.allSatisfy { $0.quota == "yt-cheap" && $0.channel == "priced" } })
    let (_, _) = try await rig.applyAll([t], observed)
    rig.setExternal("priced", "playlists/old", rig.fake.addPlaylist("UCPtYgjmUhBel31iEl2hpChY", title: "Old"))
    let t2 = rig.targets()[0]
    let again = try await rig.observe([t2])
    #expect(rig.diff(t2, again[t.id]!).map { "\($0.operation.rawValue) \($0.key)=\($0.units)" } == ["delete playlist/old=55"])
  }

  @Test("access tokens are cached in memory and in the state store until shortly before they expire")
  func tokenCaching() async throws {
    let rig = Rig()
    rig.seedChannels()
    _ = try await rig.observe(rig.targets())
    let tokenCalls = rig.fake.seen.filter { $0.service == "oauth" }
    #expect(tokenCalls.count == 3)
    #expect(tokenCalls.allSatisfy { $0.call == PlannedCall(service: "oauth", operation: "token", units: 0, quota: nil, channel: nil) })
    let stored = try #require(try rig.cache.value("youtube.token.youtube-tech-daily"))
    #expect(stored.value.hasPrefix("ya29.fake-"))
    #expect(abs(stored.expires!.timeIntervalSince(rig.clock.now) - 3599) < 1)

    rig.fake.clearSeen()
    _ = try await rig.observe(rig.targets())
    #expect(rig.fake.count("oauth.token") == 0)

    // A new driver (a restarted reconciler) finds the tokens in the state store.
    let restarted = Rig(cache: rig.cache, driver: YouTubeDriver(config: Rig.config()))
    restarted.clock.date.withLock { $0 = rig.clock.now }
    restarted.seedChannels()
    restarted.fake.state.withLock { s in rig.fake.state.withLock { s.tokens = $0.tokens } }
    _ = try await restarted.observe(restarted.targets())
    #expect(restarted.fake.count("oauth.token") == 0)

    // Within the margin of the expiry, tokens are refreshed.
    rig.clock.advance(3599 - 30)
    rig.fake.clearSeen()
    _ = try await rig.observe(rig.targets())
    #expect(rig.fake.count("oauth.token") == 3)
  }

  @Test("a 401 drops the token, refreshes once and retries once")
  func unauthorizedRefreshesOnce() async throws {
    let rig = Rig()
    rig.seedChannels()
    let t = rig.targets(["tech-daily"])
    _ = try await rig.observe(t)
    let oldToken = try #require(try rig.cache.value("youtube.token.youtube-tech-daily")?.value)
    rig.fake.revokeAccessTokens()
    rig.fake.clearSeen()
    _ = try await rig.observe(t)
    #expect(rig.fake.seen.map(\.operation) == ["channels.list", "oauth.token", "channels.list", "playlists.list"])
    let newToken = try #require(try rig.cache.value("youtube.token.youtube-tech-daily")?.value)
    #expect(newToken != oldToken)

    // Still 401 after the refresh: give up after exactly one retry, with the API's reason and no token.
    rig.fake.force401(10)
    rig.fake.clearSeen()
    let out = try await rig.driver.observe(t, context: rig.context)
    guard case .failed(let message)? = out[t[0].id] else {
      Issue.record("expected a failure")
      return
    }
    #expect(rig.fake.seen.map(\.operation) == ["channels.list", "oauth.token", "channels.list"])
    #expect(message.contains("401") && message.contains("authError"))
    #expect(!message.contains("ya29"))
  }

  @Test("errors name the reason and the secret's name, never a secret")
  func errorsWithoutSecrets() async throws {
    let rig = Rig()
    rig.seedChannels()
    rig.fake.state.withLock { $0.refreshTokens["refresh-youtube-tech-daily"] = nil }
    let out = try await rig.driver.observe(rig.targets(["tech-daily"]), context: rig.context)
    guard case .failed(let m)? = out[ResourceID(.channel, "tech-daily")] else {
      Issue.record("expected a failure")
      return
    }
    #expect(m.contains("invalid_grant"))
    #expect(m.contains("tech-daily"))
    for secret in ["refresh-youtube-tech-daily", "client-secret-value", "ya29"] { #expect(!m.contains(secret)) }

    // A channel whose credentials are not configured at all.
    let missing = decode(
      """
      apiVersion: ytempire.io/v1
      kind: Channel
      metadata: {name: nocreds}
      spec:
        youtube: {channelId: UCPtYgjmUhBel31iEl2hpChY, credentials: missing-secret}
        branding: {title: X}
      """)
    let rig2 = Rig(resources: missing)
    rig2.fake.addChannel("UCPtYgjmUhBel31iEl2hpChY", branding: ["title": "X"])
    let out2 = try await rig2.driver.observe(rig2.targets(), context: rig2.context)
    guard case .failed(let m2)? = out2[ResourceID(.channel, "nocreds")] else {
      Issue.record("expected a failure")
      return
    }
    #expect(m2.contains("credentialsNotConfigured") && m2.contains("missing-secret"))

    // Apply errors are YouTubeError structs with the API's reason.
    let ok = Rig()
    ok.seedChannels()
    let t = ok.targets(["finance-focus"])[0]
    let observed = try await ok.observe([t])
    let create = try #require(ok.diff(t, observed[t.id]!).first { $0.operation == .create })
    #expect(!create.payload.canonicalString.contains("refresh-") && !create.payload.canonicalString.contains("client-secret"))
    ok.fake.state.withLock { $0.channels = [:] }
    ok.fake.state.withLock { s in s.tokens = s.tokens.mapValues { (expires: $0.expires, channelId: "UCnobody") } }
    var badUpdate = try #require(ok.diff(t, observed[t.id]!).first { $0.key == "playlist/market-minute" || $0.operation == .create })
    badUpdate.payload = [
      "channelId": "UCgCfrL1spNxnyVmihA-2O76", "credentials": "youtube-finance-focus", "name": "x",
      "id": "PLdoesnotexist", "body": ["id": "PLdoesnotexist", "snippet": ["title": "x"]],
    ]
    badUpdate.operation = .update
    badUpdate.key = "playlist/x"
    do {
      _ = try await ok.driver.apply(badUpdate, observed: observed[t.id]!, external: [:], context: ok.context)
      Issue.record("expected playlistNotFound")
    } catch let e as YouTubeError {
      #expect(e.reason == "playlistNotFound")
      #expect(e.category == .notFound)
      #expect(e.status == 404)
      #expect(e.operation == "playlists.update")
      #expect(!e.description.contains("ya29"))
    }
  }

  @Test("API errors surface as YouTubeError with the API's reason, HTML stripped; a missing channel fails its observation")
  func apiReasons() async throws {
    let rig = Rig()
    rig.seedChannels()
    rig.fake.state.withLock { $0.channels["UCUMFxFkM-R5Kjp1vRt_1fjO"] = nil }
    let out = try await rig.driver.observe(rig.targets(), context: rig.context)
    guard case .failed(let m)? = out[ResourceID(.channel, "science-simplified")] else {
      Issue.record("expected a failure")
      return
    }
    #expect(m.contains("channelNotFound") && m.contains("UCUMFxFkM-R5Kjp1vRt_1fjO"))
    guard case .observed(let state, _)? = out[ResourceID(.channel, "tech-daily")] else {
      Issue.record("tech-daily should be observed")
      return
    }

    let t = rig.targets(["tech-daily"])[0]
    var changed = state.object!
    var b = changed["branding"]!.object!
    b["description"] = "old"
    changed["branding"] = .object(b)
    let action = try #require(rig.diff(t, .object(changed)).first { $0.key == "branding" })
    rig.fake.script(
      "channels.update",
      FakeYouTube.googleError(
        403, "quotaExceeded",
        "The request cannot be completed because you have exceeded your <a href=\"/youtube/v3/getting-started#quota\">quota</a>."))
    do {
      _ = try await rig.driver.apply(action, observed: .object(changed), external: rig.external("tech-daily"), context: rig.context)
      Issue.record("expected quotaExceeded")
    } catch let e as YouTubeError {
      #expect(e.reason == "quotaExceeded")
      #expect(e.category == .quota)
      #expect(e.status == 403)
      #expect(e.operation == "channels.update")
      #expect(e.channel == "tech-daily")
      #expect(e.message == "The request cannot be completed because you have exceeded your quota.")
    }
  }

  @Test("omitted optional fields are not managed; empty and omitted descriptions and reordered tags do not diff")
  func canonicalNoPerpetualDiff() {
    let rig = Rig()
    let id = ResourceID(.channel, "finance-focus")
    let desired = rig.desired("finance-focus")
    let observed: JSONValue = [
      "channelId": "UCgCfrL1spNxnyVmihA-2O76",
      "branding": [
        "title": "Finance Focus", "description": desired["branding"]!["description"]!,
        "keywords": desired["branding"]!["keywords"]!, "defaultLanguage": "en-US", "country": "US",
        "unsubscribedTrailer": "zzzzzzzzzzz",
      ],
      "brandingSettings": [:],
      "playlists": [
        "market-minute": [
          "id": "PL1", "title": "Market Minute", "description": "The day's market moves, summarised.",
          "privacy": "public", "tags": ["markets", "stocks"],
        ],
        // No description in the manifest: whatever YouTube has is left alone.
        "money-basics": [
          "id": "PL2", "title": "Money Basics", "description": "Someone wrote this in Studio",
          "privacy": "unlisted", "tags": ["budgeting", "personal finance"], "defaultLanguage": "en",
        ],
      ],
    ]
    let ext = ["playlists/market-minute": "PL1", "playlists/money-basics": "PL2"]
    let actions = rig.driver.diff(DiffInput(id: id, desired: desired, observed: observed, external: ext, pricing: rig.pricing))
    #expect(actions.isEmpty)
    // A privacy change shows as one field, and the update body keeps the unmanaged description, tags and language.
    var changed = observed.object!
    var pls = changed["playlists"]!.object!
    var mb = pls["money-basics"]!.object!
    mb["privacy"] = "public"
    pls["money-basics"] = .object(mb)
    changed["playlists"] = .object(pls)
    let a = rig.driver.diff(DiffInput(id: id, desired: desired, observed: .object(changed), external: ext, pricing: rig.pricing))
    #expect(a.count == 1)
    #expect(a[0].changes == [FieldChange(path: "playlists.money-basics.privacy", old: "public", new: "unlisted")])
    #expect(
      a[0].payload["body"] == [
        "id": "PL2",
        "snippet": [
          "title": "Money Basics", "description": "Someone wrote this in Studio",
          "tags": ["budgeting", "personal finance"], "defaultLanguage": "en",
        ],
        "status": ["privacyStatus": "unlisted"],
      ])
    // Nothing observed (unknown channel): nothing to do.
    #expect(rig.driver.diff(DiffInput(id: id, desired: desired, observed: .null, external: [:], pricing: rig.pricing)).isEmpty)
  }
}
