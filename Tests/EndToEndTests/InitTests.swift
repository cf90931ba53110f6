import Foundation
import TestSupport
import Testing

@Suite("ytempire init")
struct InitTests {
  func run(_ args: [String], cwd: String) async throws -> Run {
    let argv = [E2E.binary] + args
    let r = try await offload { try Processes.run(argv, cwd: cwd, env: ["NO_COLOR": "1"], check: false) }
    return Run(status: r.status, stdout: r.stdout, stderr: r.stderr)
  }

  @Test("scaffolds one resource of each kind that validates as it is, with modelines, an ignore file and a CI example; never overwrites")
  func scaffold() async throws {
    let tmp = try TemporaryDirectory("ytempire-init")
    let dir = tmp.sub("empire")
    let r = try await run(["init", dir, "--schemas", "/opt/ytempire/schemas"], cwd: tmp.path)
    #expect(r.status == 0, "\(r)")
    let v = try await run(["validate", dir], cwd: tmp.path)
    #expect(v.status == 0, "\(v)")
    #expect(
      v.stdout.contains(
        "7 resources in 7 files (1 Channel, 1 Schedule, 1 ProviderChain, 1 RateLimit, 1 CDNZone, 1 SecurityPolicy, 1 Monitor): valid"),
      "\(v)")
    let c = try await run(["validate", "--config", dir + "/ci/ytempire.yaml", dir], cwd: tmp.path)
    #expect(c.status == 0, "\(c)")
    let channel = try String(contentsOfFile: dir + "/channels/my-channel.yaml", encoding: .utf8)
    #expect(channel.hasPrefix("# yaml-language-server: $schema=/opt/ytempire/schemas/channel.schema.json\n"))
    let ci = try String(contentsOfFile: dir + "/.github/workflows/ytempire.yml", encoding: .utf8)
    #expect(ci.contains("ytempire validate .") && ci.contains("--output markdown"))
    #expect(FileManager.default.fileExists(atPath: dir + "/.ytempireignore"))

    // An edited file survives a second init.
    try "# mine\n".write(toFile: dir + "/README.md", atomically: true, encoding: .utf8)
    let again = try await run(["init", dir], cwd: tmp.path)
    #expect(again.status == 0)
    #expect(again.stdout.contains("0 files written"))
    #expect(try String(contentsOfFile: dir + "/README.md", encoding: .utf8) == "# mine\n")

    // A file where the directory should be is refused.
    try "x".write(toFile: tmp.sub("plain"), atomically: true, encoding: .utf8)
    let bad = try await run(["init", tmp.sub("plain")], cwd: tmp.path)
    #expect(bad.status == 1)
    #expect(bad.stderr.contains("exists and is not a directory"))
  }
}
