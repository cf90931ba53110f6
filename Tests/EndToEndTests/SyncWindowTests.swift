import Foundation
import Testing
import YAMLKit

@Suite("end to end: sync windows")
struct SyncWindowEndToEndTests {
  @Test("a deny window open now: plan shows the Channel actions held back with the ETA, apply leaves them, apply --force applies them")
  func denyWindow() async throws {
    try await Empire.with(
      config: { text in
        text.replacingOccurrences(
          of: "policy: {prune: true,",
          with: """
            policy: {syncWindows: [{kind: deny, schedule: "* * * * *", duration: 1h, timezone: UTC, applies: [Channel]}], prune: true,
            """)
      },
      { e in
        let seeded = try await e.description(ofChannel: "tech-daily")
        let plan = try await e.planJSON()
        let channelActions = PlanJSON.actions(plan).filter {
          PlanJSON.resource($0).hasPrefix("Channel/") && ($0["action"] as? [String: Any])?["driver"] as? String == "youtube"
        }
        #expect(!channelActions.isEmpty)
        for pa in channelActions {
          let d = pa["deferred"] as? [String: Any]
          #expect(d?["reason"] as? String == "syncWindow", "\(pa)")
          #expect(d?["eta"] != nil)
        }
        let text = try await e.run("plan")
        #expect(text.stdout.contains("DEFERRED: held by the deny window \"* * * * *\""), "\(text)")

        try await e.apply()
        #expect(try await e.description(ofChannel: "tech-daily") == seeded)
        let status = try e.statusFile("status/channel/tech-daily.yaml")
        #expect(status.condition("Deferred")?.reason == "SyncWindow")

        try await e.apply(["--force"])
        #expect(try await e.description(ofChannel: "tech-daily") != seeded)
      })
  }
}
