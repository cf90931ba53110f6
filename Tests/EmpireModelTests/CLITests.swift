import Foundation
import Testing

/// End-to-end: the built binary, its exit codes and output formats.
@Suite("ytempire validate (binary)")
struct CLITests {
  @Test("debug build-info says how the binary was built (the benchmarks label their figures with it)")
  func buildInfo() throws {
    // The binary under test is built in the same configuration as this test.
    let expected = _isDebugAssertConfiguration() ? "debug" : "release"
    let (status, out, err) = try Support.run(["debug", "build-info", "--field", "configuration"])
    #expect(status == 0, "\(err)")
    #expect(out == expected + "\n")
    let (_, json, _) = try Support.run(["debug", "build-info"])
    let obj = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: String])
    #expect(obj["configuration"] == expected)
    #expect(obj["version"]?.isEmpty == false)
    let (bad, _, badErr) = try Support.run(["debug", "build-info", "--field", "colour"])
    #expect(bad != 0)
    #expect(badErr.contains("--field must be version or configuration"))
  }

  @Test func validRepositoryExitsZero() throws {
    let (status, out, err) = try Support.run(["validate", Support.examples.path])
    #expect(status == 0, "\(err)")
    #expect(out.contains(": valid"))
    #expect(out.contains("Channel"))
    #expect(err.isEmpty)
  }

  @Test("errors: exit 1, compiler-style lines on stderr, no colour without a TTY")
  func invalidRepositoryExitsOne() throws {
    let dir = try Support.tempDir(["c.yaml": Support.channel("a").replacingOccurrences(of: "active: true", with: "active: yes")])
    defer { Support.cleanup(dir) }
    let (status, out, err) = try Support.run(["validate", "."], cwd: dir)
    #expect(status == 1)
    #expect(err == "c.yaml:7:11: error: Channel.spec.active: 'yes' is not a boolean in YAML 1.2; write true or false [yaml11-boolean]\n")
    #expect(!err.contains("\u{1B}["))
    #expect(out.contains("1 error"))
  }

  @Test("--output json has the documented stable shape")
  func jsonShape() throws {
    let dir = try Support.tempDir([
      "a.yaml": Support.channel("a", share: 0.7),
      "b.yaml": Support.channel("b", share: 0.7).replacingOccurrences(of: "branding: {title: b}", with: "branding: {titel: b}"),
    ])
    defer { Support.cleanup(dir) }
    let (status, out, _) = try Support.run(["validate", dir.path, "--output", "json"])
    #expect(status == 1)
    let obj = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
    #expect(obj["version"] as? Int == 1)
    #expect(obj["valid"] as? Bool == false)
    #expect(obj["files"] as? Int == 2)
    #expect((obj["resources"] as? [String: Int])?["Channel"] == 1)
    let diags = try #require(obj["diagnostics"] as? [[String: Any]])
    for d in diags {
      #expect(Set(d.keys).isSuperset(of: ["file", "line", "column", "severity", "code", "message"]))
      #expect((d["file"] as? String)?.hasSuffix("b.yaml") == true)
      #expect(d["line"] as? Int == 9)
    }
    #expect(Set(diags.compactMap { $0["code"] as? String }) == ["unknown-field", "missing-field"])
  }

  @Test func missingPathIsAnError() throws {
    let (status, _, err) = try Support.run(["validate", "/nonexistent/ytempire"])
    #expect(status == 1)
    #expect(err.contains("/nonexistent/ytempire:1:1: error: no such file or directory"))
  }
}
