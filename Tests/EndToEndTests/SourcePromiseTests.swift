import Foundation
import Sandbox
import TestSupport
import Testing

/// DESIGN A10 "The source's promises hold through every command", through the built binary
/// with a real `git daemon` remote: a force-push is refused by plan and apply (and accepted
/// with `allowRewrite: true`); a remote that is down answers from the last good revision.
@Suite("source promises", .serialized)
struct SourcePromiseTests {
  /// Rewrites `main` of the served repository: a new root commit with the same files and one
  /// edit, force-pushed (the old history is not an ancestor of it).
  static func forcePush(_ s: Served, edit: [String: String]) throws -> String {
    let repo = s.empire.repo
    try repo.git("checkout", "-q", "--orphan", "rewritten")
    try repo.write(edit)
    try repo.git("add", "-A")
    try repo.git("commit", "-q", "-m", "Rewritten history")
    try repo.git("branch", "-q", "-M", "rewritten", "main")
    try repo.git("push", "-q", "-f", "origin", "main")
    return try repo.git("rev-parse", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines)
  }

  static func editedChannel(_ e: Empire, _ description: String) throws -> [String: String] {
    let text = try e.channelFile("science-simplified")
    let old = "    description: Big ideas from physics, space and biology in ten-minute explainers."
    #expect(text.contains(old))
    return ["channels/science-simplified.yaml": text.replacingOccurrences(of: old, with: "    description: \(description)")]
  }

  @Test("a force-push of the followed branch is refused by plan and apply, nothing is applied; allowRewrite accepts it")
  func forcePushRefused() async throws {
    try await Empire.with { e in
      let s = try Served(e, interval: "1m")
      try await e.apply()
      let applied = try E2E.object(try await e.run("status", "--output", "json").stdout)["lastAppliedRevision"] as? String
      #expect(applied?.hasPrefix("main@sha1:") == true)

      let rewritten = try Self.forcePush(s, edit: try Self.editedChannel(e, "Pushed over history"))
      let writesBefore = e.youtubeWrites
      let plan = try await e.run("plan")
      #expect(plan.status == 1, "\(plan)")
      #expect(plan.stderr.contains("[history-rewritten]"), "\(plan)")
      #expect(plan.stderr.contains(String(rewritten.prefix(12))), "names the new commit: \(plan)")
      #expect(plan.stderr.contains("allowRewrite"), "says how to accept it: \(plan)")
      let apply = try await e.run("apply", "--auto-approve")
      #expect(apply.status == 1, "\(apply)")
      #expect(apply.stderr.contains("[history-rewritten]"), "\(apply)")
      #expect(e.youtubeWrites == writesBefore, "nothing was applied")
      #expect(try await e.description(ofChannel: "science-simplified") != "Pushed over history")
      // The refusal holds on every later run too, not only on the first one that saw it.
      #expect(try await e.run("plan").status == 1)

      try e.writeConfig(e.configText.replacingOccurrences(of: "source:\n", with: "source:\n  allowRewrite: true\n"))
      let accepted = try await e.apply()
      #expect(accepted.status == 0, "\(accepted)")
      #expect(try await e.description(ofChannel: "science-simplified") == "Pushed over history")
    }
  }

  @Test("with the remote down, plan and apply answer from the last good revision with a warning naming it")
  func unreachableUsesLastGood() async throws {
    try await Empire.with { e in
      let s = try Served(e, interval: "1m")
      try await e.apply()
      let good = try e.repo.git("rev-parse", "HEAD").trimmingCharacters(in: .whitespacesAndNewlines)
      s.daemon.stop()

      let plan = try await e.run("plan", "--detailed-exitcode")
      #expect(plan.status == 0, "no changes, exit code unchanged: \(plan)")
      #expect(plan.stderr.contains("warning: source:"), "\(plan)")
      #expect(plan.stderr.contains("using the last good revision main@sha1:\(good)"), "\(plan)")
      #expect(plan.stdout.contains("No changes"), "\(plan)")
      let apply = try await e.apply()
      #expect(apply.stderr.contains("using the last good revision main@sha1:\(good)"), "\(apply)")
    }
  }

  @Test("serve refuses a force-push too: logged with history-rewritten, nothing applied, and it keeps serving")
  func serveRefusesForcePush() async throws {
    try await Empire.with { e in
      let s = try Served(e, interval: "1s")
      let (p, _) = try await s.start()
      try await s.eventually("the first revision applied") { s.log().contains("reconciled:") }
      let writes = e.youtubeWrites
      let rewritten = try Self.forcePush(s, edit: try Self.editedChannel(e, "Pushed over history"))
      try await s.eventually("the rewrite refused") {
        s.log().contains("[history-rewritten]") && s.log().contains(String(rewritten.prefix(12)))
      }
      // Several polls later it is still refused and nothing was written.
      let refusals = s.log().components(separatedBy: "[history-rewritten]").count
      try await s.eventually("the refusal repeated on a later poll") {
        s.log().components(separatedBy: "[history-rewritten]").count > refusals
      }
      #expect(e.youtubeWrites == writes)
      #expect(try await e.description(ofChannel: "science-simplified") != "Pushed over history")
      #expect(try await s.stop(p) == 0)
    }
  }
}
