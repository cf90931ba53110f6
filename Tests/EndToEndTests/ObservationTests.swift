import Foundation
import Sandbox
import TestSupport
import Testing

/// DESIGN A10 "Observation is priced, not skipped", through the built binary.
@Suite("observation is priced, not skipped")
struct ObservationTests {
  @Test("an n8n workflow deactivated by hand is seen by a plain plan: observing n8n costs no quota unit")
  func handDeactivatedWorkflow() async throws {
    try await Empire.with { e in
      try await e.apply()
      #expect(try await e.run("plan", "--detailed-exitcode").status == 0)
      let (code, body) = try await e.admin("GET", "/state/n8n/workflows")
      #expect(code == 200)
      let workflows = body as? [String: Any] ?? [:]
      let id = try #require(
        workflows.first { (($0.value as? [String: Any])?["name"] as? String) == "ytempire/content-generation" }?.key,
        "\(workflows.keys)")
      let (patched, answer) = try await e.admin("PATCH", "/state/n8n/workflows/\(id)", ["active": false])
      #expect(patched == 200, "\(String(describing: answer))")

      let youtubeReads = e.calls("youtube GET /youtube/v3/channels") + e.calls("youtube GET /youtube/v3/playlists")
      let plan = try await e.run("plan", "--detailed-exitcode")
      #expect(plan.status == 2, "the hand edit is a change: \(plan)")
      #expect(plan.stdout.contains("Schedule/content-generation"), "\(plan)")
      // Nothing in YouTube changed in git: its quota-priced observation came from the store.
      #expect(e.calls("youtube GET /youtube/v3/channels") + e.calls("youtube GET /youtube/v3/playlists") == youtubeReads)

      try await e.apply()
      let (_, after) = try await e.admin("GET", "/state/n8n/workflows/\(id)")
      #expect((after as? [String: Any])?["active"] as? Bool == true)
      #expect(try await e.run("plan", "--detailed-exitcode").status == 0)
    }
  }

  @Test("with every API unreachable, plan and apply name each resource they could not observe and exit 1")
  func unreachableAPIs() async throws {
    try await Empire.with(edit: fastRetries) { e in
      try await e.apply()
      // Every integration endpoint now points at a port nothing listens on.
      let base = e.sandbox.baseURL
      #expect(e.configText.contains(base))
      try e.writeConfig(e.configText.replacingOccurrences(of: base, with: "http://127.0.0.1:1"))

      let plan = try await e.run("plan", "--detailed-exitcode", "--refresh", "all")
      #expect(plan.status == 1, "not 0 ('unchanged') and not 2: \(plan)")
      #expect(plan.stdout.contains("not observed."), "\(plan)")
      #expect(!plan.stdout.contains("No changes"), "\(plan)")
      #expect(plan.stdout.contains("could not be observed (see above): whether they match the desired state is not known"), "\(plan)")
      #expect(plan.stderr.contains("could not be observed, so nothing is known or planned for them"), "\(plan)")
      for id in ["Channel/tech-daily", "Schedule/content-generation", "CDNZone/ytempire-static", "SecurityPolicy/ytempire"] {
        #expect(plan.stderr.contains("\n  \(id): "), "names \(id): \(plan)")
      }
      let apply = try await e.run("apply", "--auto-approve", "--refresh", "all")
      #expect(apply.status == 1, "\(apply)")
      #expect(apply.stderr.contains("could not be observed"), "\(apply)")
    }
  }
}
