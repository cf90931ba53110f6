import CurlHTTP
import DriverKit
import EmpireModel
import Foundation
import Reconciler
import Resilience
import Sandbox
import Synchronization
import TestSupport
import Testing

@testable import CloudflareDriver

/// A resilience clock whose sleeps return at once and move the sandbox's clock by as much, so a
/// Retry-After of five minutes is honoured without waiting five minutes.
final class LinkedClock: ResilienceClock {
  let origin = ContinuousClock.now
  let offset = Mutex<Duration>(.zero)
  let sleepsMade = Mutex<[Duration]>([])
  let sandbox: SandboxClock
  init(_ sandbox: SandboxClock) { self.sandbox = sandbox }
  var now: ContinuousClock.Instant { origin.advanced(by: offset.withLock { $0 }) }
  var wallNow: Date { Date(timeIntervalSince1970: 1_780_000_000).addingTimeInterval(Double(offset.withLock { $0 }.components.seconds)) }
  func sleep(until deadline: ContinuousClock.Instant) async throws {
    try Task.checkCancellation()
    let d = deadline - now
    guard d > .zero else { return }
    offset.withLock { $0 += d }
    sleepsMade.withLock { $0.append(d) }
    let c = d.components
    sandbox.advance(by: Double(c.seconds) + Double(c.attoseconds) / 1e18)
  }
  var sleeps: [Duration] { sleepsMade.withLock { $0 } }
}

@Suite("CloudflareDriver through the engine, libcurl and the sandbox")
struct CloudflareSandboxTests {
  static func withSandbox(token: String? = nil, _ body: (SandboxServer, LinkedClock, (EngineOptions) throws -> Engine) async throws -> Void)
    async throws
  {
    var o = SandboxOptions()
    o.seedFrom = Repo.examples
    let sb = try await SandboxServer.start(o)
    let dir = NSTemporaryDirectory() + "ytempire-cf-" + UUID().uuidString
    do {
      try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
      let store = try SQLiteStateStore(stateDir: dir)
      let clock = LinkedClock(sb.clock)
      let driver = CloudflareDriver(
        config: CloudflareDriverConfig(
          endpoint: sb.cloudflareURL,
          token: .literal("integrations.cloudflare.token", token ?? sb.credentials.cloudflareToken)))
      let http = CurlHTTPClient()
      try await body(sb, clock, { opts in Engine(drivers: [driver], store: store, transport: http, options: opts, clock: clock) })
    } catch {
      await sb.stop()
      try? FileManager.default.removeItem(atPath: dir)
      throw error
    }
    await sb.stop()
    try? FileManager.default.removeItem(atPath: dir)
  }

  static func admin(_ sb: SandboxServer, _ method: String, _ path: String, _ body: JSONValue? = nil) async throws -> HTTPResponse {
    try await CurlHTTPClient().execute(
      HTTPRequest(
        method: method, url: sb.adminURL + path, headers: ["Content-Type": "application/json"],
        body: body?.canonicalBytes))
  }

  @Test("plan, apply, plan twice with no change; dashboard drift becomes a plan; a 429 block is waited out")
  func convergeThroughEngine() async throws {
    try await Self.withSandbox { sb, clock, engine in
      let resources = Example.resources
      let files = Example.files()
      let plan = try await engine(EngineOptions()).plan(resources, revision: "r1", files: files)
      let keys = plan.actions.map(\.action).filter { $0.driver == "cloudflare" }.map {
        "\($0.resource.name):\($0.operation.rawValue):\($0.key)"
      }
      #expect(
        keys == [
          "ytempire-static:create:rules/cache", "ytempire-static:create:rules/config", "ytempire-static:update:setting/webp",
          "ytempire-static:create:script/geo-router", "ytempire-static:create:script/thumbnail-optimizer",
          "ytempire-static:create:route/geo-router", "ytempire-static:create:route/thumbnail-optimizer",
          "ytempire-video:create:bucket/ytempire-video-asia-pacific", "ytempire-video:create:bucket/ytempire-video-eu-west",
          "ytempire-video:create:bucket/ytempire-video-us-east",
        ])
      #expect(plan.resources.filter { $0.id.kind == .cdnZone }.allSatisfy { $0.observationError == nil })
      let report = try await engine(EngineOptions()).apply(plan, desired: resources, files: files, force: true)
      #expect(report.failed == 0)
      #expect(report.succeeded == plan.actions.count)
      #expect(sb.callCounts["cloudflare PUT /client/v4/accounts/\(SandboxCloudflare.accountId)/workers/scripts/geo-router"] == 1)
      // The seeded hand-made rule of the other zone is there as it was.
      let zones = try JSONValue.parse(try await Self.admin(sb, "GET", "/state/cloudflare/zones").body).object ?? [:]
      let video = try #require(zones.first { $0.value["name"]?.string == "ytempire-video.com" }?.key)
      let manual = try JSONValue.parse(
        try await Self.admin(sb, "GET", "/state/cloudflare/rulesets/\(video)/http_request_cache_settings").body)
      #expect(manual["rules"]?.array?.map { $0["ref"]?.string } == ["manual-fonts"])
      #expect(manual["version"] == "1")

      // Apply, then plan twice, observing everything again: no change.
      var all = EngineOptions()
      all.refresh = .all
      for _ in 0..<2 {
        let again = try await engine(all).plan(resources, revision: "r1", files: files)
        #expect(again.actions.isEmpty, "\(again.actions.map(\.action.id))")
        #expect(again.resources.filter { $0.id.kind == .cdnZone }.allSatisfy { $0.observationError == nil })
      }

      // Drift: webp switched off in the dashboard.
      let zid = try #require(zones.first { $0.value["name"]?.string == "ytempire.com" }?.key)
      let patch = try await Self.admin(
        sb, "PUT", "/state/cloudflare/settings/\(zid)/webp",
        ["id": "webp", "value": "off", "editable": true, "modified_on": .null])
      #expect(patch.status < 300)
      let drift = try await engine(all).plan(resources, revision: "r1", files: files)
      #expect(drift.actions.map(\.action.id) == ["cloudflare:CDNZone/ytempire-static:update:setting/webp"])
      #expect(drift.resources.first { $0.id.name == "ytempire-static" }?.driftedFields == ["settings.webp"])

      // Cloudflare's limit: 4 requests, then a 429 (code 971) and a five-minute block. The
      // resilience layer waits out each block (Retry-After) and the observation completes.
      let quota = try await Self.admin(sb, "PUT", "/quota", ["cloudflare": ["limit": 4]])
      #expect(quota.status < 300)
      let before = clock.sleeps.count
      let blocked = try await engine(all).plan(resources, revision: "r1", files: files)
      #expect(
        blocked.resources.filter { $0.id.kind == .cdnZone }.allSatisfy { $0.observationError == nil },
        "\(blocked.resources.compactMap(\.observationError))")
      #expect(blocked.actions.map(\.action.id) == ["cloudflare:CDNZone/ytempire-static:update:setting/webp"])
      let waits = clock.sleeps.dropFirst(before)
      #expect(waits.filter { $0 >= .seconds(299) }.count >= 2)
    }
  }

  @Test("through the resilient stack, Cloudflare's error answers become the resource's observation error")
  func errorsThroughTheStack() async throws {
    try await Self.withSandbox(token: "a-wrong-token") { sb, _, engine in
      let plan = try await engine(EngineOptions()).plan(Example.resources, revision: "r1", files: Example.files())
      let errors = plan.resources.filter { $0.id.kind == .cdnZone }.compactMap(\.observationError)
      #expect(errors.count == 2)
      for e in errors {
        #expect(e.contains("cloudflare zones.list for ytempire-") && e.contains("HTTP 403 code 9109: Invalid access token"), "\(e)")
        #expect(!e.contains("a-wrong-token"))
      }
      #expect(plan.actions.isEmpty)
    }
  }
}
