import CurlHTTP
import DriverKit
import EmpireModel
import Foundation
import Synchronization
import TestSupport

@testable import YouTubeDriver

/// A driver over the fake, with an engine-like loop (observe → diff → apply every action,
/// keeping the latest observed state and the recorded external ids as the engine does).
final class Rig: Sendable {
  let clock = TestClock()
  let fake: FakeYouTube
  let cache: MemoryCache
  let driver: YouTubeDriver
  let index: DesiredIndex
  let pricing: Pricing
  let loop: DriverLoop<YouTubeDriver>

  static func config(endpoint: String = "https://yt.test/youtube/v3", tokenEndpoint: String = "https://oauth.test/token")
    -> YouTubeDriverConfig
  {
    YouTubeDriverConfig(
      endpoint: endpoint, tokenEndpoint: tokenEndpoint,
      clientId: .literal("integrations.youtube.clientId", "client-id"),
      clientSecret: .literal("integrations.youtube.clientSecret", "client-secret-value"),
      credentials: { name in name.hasPrefix("missing") ? nil : .literal("secrets.\(name)", "refresh-\(name)") })
  }

  init(resources: [Resource] = Example.resources, cache: MemoryCache = MemoryCache(), driver: YouTubeDriver? = nil) {
    index = DesiredIndex(resources)
    pricing = Pricing(index)
    var tokens: [String: String] = [:]
    for r in index.all(.channel) { tokens["refresh-\(r.channel!.youtube.credentials)"] = r.channel!.youtube.channelId }
    fake = FakeYouTube(clock: clock, refreshTokens: tokens)
    self.cache = cache
    self.driver = driver ?? YouTubeDriver(config: Self.config())
    loop = DriverLoop(self.driver)
  }

  var context: DriverContext {
    let fake = self.fake
    let clock = self.clock
    return DriverContext(desired: index, pricing: pricing, cache: cache, client: { fake.client($0) }, now: { clock.now })
  }

  /// Creates every desired channel on the fake, with its branding exactly as desired.
  func seedChannels(extra: [String: JSONValue] = [:]) {
    for r in index.all(.channel) {
      let b = r.channel!.branding
      var ch: [String: JSONValue] = ["title": .string(b.title)]
      if let d = b.description { ch["description"] = .string(d) }
      if let k = b.keywords { ch["keywords"] = .string(YouTubeKeywords.join(k)) }
      if let l = b.defaultLanguage { ch["defaultLanguage"] = .string(l) }
      if let c = b.country { ch["country"] = .string(c) }
      if let t = b.unsubscribedTrailer { ch["unsubscribedTrailer"] = .string(t) }
      fake.addChannel(r.channel!.youtube.channelId, branding: .object(ch), extra: extra)
    }
  }

  func targets(_ names: [String]? = nil, desired: Bool = true) -> [ObserveTarget] {
    let ext = loop.externals.withLock { $0 }
    let all = index.all(.channel).filter { names?.contains($0.name) ?? true }
    return all.map { r in
      ObserveTarget(
        id: ResourceID(r), desired: desired ? driver.desired(r, in: index) : Optional<JSONValue>.none, external: ext[ResourceID(r)] ?? [:])
    }
  }

  func desired(_ name: String) -> JSONValue { driver.desired(index.resource(.channel, name)!, in: index) }

  /// Observes, records adopted ids (as the engine does when the plan is applied) and returns
  /// the observed states; throws when a target failed.
  func observe(_ targets: [ObserveTarget]) async throws -> [ResourceID: JSONValue] { try await loop.observe(targets, context: context) }

  func diff(_ t: ObserveTarget, _ observed: JSONValue) -> [Action] {
    driver.diff(
      DiffInput(id: t.id, desired: t.desired, observed: observed, external: loop.externals.withLock { $0[t.id] ?? [:] }, pricing: pricing))
  }

  /// Applies every action of every target; returns the actions and the states after them.
  func applyAll(_ targets: [ObserveTarget], _ observed: [ResourceID: JSONValue]) async throws -> ([Action], [ResourceID: JSONValue]) {
    var all: [Action] = []
    var states = observed
    for t in targets {
      for a in diff(t, observed[t.id] ?? .null) {
        all.append(a)
        let ext = loop.externals.withLock { $0[t.id] ?? [:] }
        let outcome = try await driver.apply(a, observed: states[t.id] ?? .null, external: ext, context: context)
        loop.externals.withLock { e in
          for (k, v) in outcome.external { e[t.id, default: [:]][k] = v }
        }
        if let o = outcome.observed { states[t.id] = o }
      }
    }
    return (all, states)
  }

  func external(_ name: String) -> [String: String] { loop.externals.withLock { $0[ResourceID(.channel, name)] ?? [:] } }
  func setExternal(_ name: String, _ key: String, _ value: String?) {
    loop.externals.withLock { $0[ResourceID(.channel, name), default: [:]][key] = value }
  }
}

extension Array where Element == Action {
  func keys(_ op: DriverKit.ActionOperation? = nil) -> [String] {
    filter { op == nil || $0.operation == op }.map { "\($0.resource.name):\($0.operation.rawValue):\($0.key)" }
  }
}
