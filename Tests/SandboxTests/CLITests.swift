import Foundation
import TestSupport
import Testing

@testable import Sandbox

/// Runs the built `ytempire` binary (built next to the test bundle by `swift build --build-tests`).
@Suite struct SandboxCLITests {
  var binary: URL {
    URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("ytempire")
  }

  func waitFor(_ file: URL, containing needle: String, seconds: Double = 60) async throws -> String {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
      let text = (try? String(contentsOf: file, encoding: .utf8)) ?? ""
      if text.contains(needle) { return text }
      try await Task.sleep(for: .milliseconds(100))
    }
    Issue.record("timed out waiting for '\(needle)' in \(file.path)")
    return (try? String(contentsOf: file, encoding: .utf8)) ?? ""
  }

  @Test func servesPrintsWritesConfigAndStopsOnSIGTERM() async throws {
    try #require(FileManager.default.isExecutableFile(atPath: binary.path), "build the ytempire product first")
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sandbox-cli-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let out = dir.appendingPathComponent("out.txt")
    try #require(FileManager.default.createFile(atPath: out.path, contents: nil))
    let config = dir.appendingPathComponent("ytempire.yaml")
    let p = try Processes.start(
      [
        binary.path, "sandbox", "--listen", "127.0.0.1:0", "--seed-from", examplesDir, "--write-config", config.path,
        "--state-dir", dir.appendingPathComponent("state").path, "--faults", "vault:/v1/sys/health=latency:1ms",
      ],
      stdout: .file(out.path), stderr: .file(out.path))
    let text = try await waitFor(out, containing: "press Ctrl-C")
    let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("ytempire sandbox listening on ") })
    let base = String(line.dropFirst("ytempire sandbox listening on ".count))
    let port = try #require(Int(base.split(separator: ":").last ?? ""))
    #expect(text.contains("refresh token 1//sandbox-refresh-tech-daily"))
    #expect(text.contains("cloudflare token      sandbox-cloudflare-token"))
    let health = try await RawHTTP.send(port: port, "GET", "/v1/sys/health")
    #expect(health.status == 200)
    let yaml = try String(contentsOf: config, encoding: .utf8)
    #expect(yaml.contains("kind: ReconcilerConfig"))
    #expect(yaml.contains("endpoint: \"\(base)/youtube/v3\""))
    #expect(yaml.contains("youtube-tech-daily: {value: \"1//sandbox-refresh-tech-daily\"}"))
    p.terminate()  // SIGTERM: graceful stop
    #expect(p.wait(timeout: 120) == 0)
    let final = try String(contentsOf: out, encoding: .utf8)
    #expect(final.contains("sandbox stopped"))
  }

  @Test func nonLoopbackListenAndUnsafeConfigTargetsAreRefused() async throws {
    try #require(FileManager.default.isExecutableFile(atPath: binary.path), "build the ytempire product first")
    let wide = try Processes.run([binary.path, "sandbox", "--listen", "0.0.0.0:0"], check: false)
    #expect(wide.status == 1)
    #expect(wide.stderr.contains("--allow-non-loopback"))
    let dir = NSTemporaryDirectory() + "ytempire-sb-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let victim = dir + "/victim"
    try Data("keep".utf8).write(to: URL(fileURLWithPath: victim))
    try FileManager.default.createSymbolicLink(atPath: dir + "/link.yaml", withDestinationPath: victim)
    for target in [dir + "/link.yaml", "/dev/null", dir] {
      let r = try Processes.run([binary.path, "sandbox", "--listen", "127.0.0.1:0", "--write-config", target], check: false)
      #expect(r.status == 1, "\(target)")
      #expect(r.stderr.contains("not a regular file"), "\(target): \(r.stderr)")
    }
    #expect(try String(contentsOfFile: victim, encoding: .utf8) == "keep")
    var st = stat()
    #expect(lstat(dir + "/link.yaml", &st) == 0 && (st.st_mode & S_IFMT) == S_IFLNK)
  }

  @Test func badFaultSpecFailsWithAMessage() async throws {
    try #require(FileManager.default.isExecutableFile(atPath: binary.path), "build the ytempire product first")
    let r = try Processes.run([binary.path, "sandbox", "--listen", "127.0.0.1:0", "--faults", "youtube=explode"], check: false)
    let message = r.stderr
    #expect(r.status == 1)
    #expect(message.contains("unknown fault 'explode'"))
  }
}
