import Foundation
import Sandbox
import TestSupport
import Testing

/// DESIGN A10 "Credentials that cannot act for their channel", through the built binary.
@Suite("credentials that act for another channel")
struct CredentialTests {
  @Test("a Channel whose credentials act for another channel is Stalled at plan time, nothing is written for it; the rest converges")
  func credentialsForAnotherChannel() async throws {
    try await Empire.with { e in
      let victim = try #require(e.sandbox.seed.channels.first { $0.name == "tech-daily" })
      let other = try #require(e.sandbox.seed.channels.first { $0.name == "finance-focus" })
      // tech-daily's credentials name now holds finance-focus's refresh token.
      let line = "  \(victim.credentials): {value: \"\(victim.refreshToken)\"}"
      #expect(e.configText.contains(line))
      try e.writeConfig(e.configText.replacingOccurrences(of: line, with: "  \(victim.credentials): {value: \"\(other.refreshToken)\"}"))

      let plan = try await e.run("plan")
      #expect(plan.status == 0, "\(plan)")
      let message = "the credentials \(victim.credentials) act for channel \(other.channelId), not for \(victim.channelId)"
      #expect(plan.stdout.contains(message), "\(plan)")
      #expect(plan.stdout.contains("Stalled"), "\(plan)")
      let json = try await e.planJSON()
      let techActions = PlanJSON.actions(json).filter {
        PlanJSON.resource($0) == "Channel/tech-daily" && (($0["action"] as? [String: Any])?["driver"] as? String) == "youtube"
      }
      #expect(techActions.isEmpty, "no write is planned for it: \(techActions)")

      let updatesBefore = e.calls(Empire.channelsUpdate)
      let apply = try await e.run("apply", "--auto-approve")
      #expect(apply.status == 0, "\(apply)")
      // finance-focus and science-simplified converge (their branding differs in the sandbox); tech-daily is not touched.
      #expect(e.calls(Empire.channelsUpdate) - updatesBefore == 2)
      #expect(try await e.description(ofChannel: "tech-daily") != nil)

      let status = try E2E.object(try await e.run("status", "--output", "json").stdout)
      let records = status["resources"] as? [[String: Any]] ?? []
      let tech = records.first {
        (($0["id"] as? [String: Any])?["name"] as? String) == "tech-daily"
          && (($0["id"] as? [String: Any])?["kind"] as? String) == "Channel"
      }
      let conditions = tech?["conditions"] as? [[String: Any]] ?? []
      let stalled = conditions.first { $0["type"] as? String == "Stalled" }
      #expect(stalled?["status"] as? String == "True", "\(conditions)")
      #expect(stalled?["reason"] as? String == "CredentialMismatch", "\(conditions)")
      #expect((stalled?["message"] as? String ?? "").contains(message))
      #expect(conditions.first { $0["type"] as? String == "Ready" }?["status"] as? String == "False")

      // Remembered: the next plan does not ask again (no more channels.list?mine=true).
      let mineBefore = e.calls("youtube GET /youtube/v3/channels")
      let again = try await e.run("plan", "--refresh", "none")
      #expect(again.stdout.contains(message), "\(again)")
      #expect(e.calls("youtube GET /youtube/v3/channels") == mineBefore)
    }
  }
}
