import Foundation
import TestSupport
import Testing

/// `source.timeouts` and `source.caFile` of ytempire.yaml, through `plan` (the path apply and
/// serve share): the configuration reaches the git source.
@Suite("end to end: source timeouts and CA bundle from ytempire.yaml", .serialized)
struct SourceSettingsTests {
  /// Writes `base` (the rendered ytempire.yaml) with its `source.url` line replaced by `lines`.
  static func withSource(_ e: Empire, _ lines: String, base: String? = nil) throws {
    var cfg = (base ?? e.configText).components(separatedBy: "\n")
    let at = try #require(cfg.firstIndex { $0.hasPrefix("  url: ") })
    cfg[at] = lines
    try e.writeConfig(cfg.joined(separator: "\n"))
  }

  @Test("source.timeouts: plan against a server that accepts and stays silent gives up at connect + transfer + 1s")
  func timeoutsReachTheSource() async throws {
    let listener = try SilentListener()
    defer { listener.close() }
    try await Empire.with { e in
      try Self.withSource(e, "  url: \"git://127.0.0.1:\(listener.port)/empire.git\"\n  timeouts: {connect: 500ms, transfer: 1s}")
      let r = try await e.run(["plan"])
      #expect(r.status == 1, "\(r)")
      #expect(r.stderr.contains("did not finish within 2.5 seconds"), "\(r)")
      #expect(r.stderr.contains("[timeout]"), "\(r)")
    }
  }

  @Test(
    "source.caFile: an https source behind a private CA plans; without the CA, a TLS error naming the host (answered from the last good revision)"
  )
  func caFileReachesTheSource() async throws {
    try await Empire.with { e in
      let ca = try TestCA(in: e.tmp.sub("pki"))
      let token = "tok_\(UUID().uuidString)"
      let server = try GitHTTPServer.serving(e.repo.path, at: e.tmp.sub("served"), token: token, tls: (ca.certificate, ca.key))
      defer { server.stop() }
      let source = "  url: \"\(server.url("empire.git"))\"\n  auth: {token: {env: YTE_GIT}}"
      // The environment running the tests may name a bundle of its own: empty = unset.
      let env = ["YTE_GIT": token, "GIT_SSL_CAINFO": "", "SSL_CERT_FILE": ""]
      let rendered = e.configText
      try Self.withSource(e, source + "\n  caFile: \"\(ca.caFile)\"", base: rendered)
      let ok = try await e.run(["plan"], env: env)
      #expect(ok.status == 0, "\(ok)")
      #expect(ok.stdout.contains("Plan: "), "\(ok)")
      try Self.withSource(e, source, base: rendered)
      // The source refuses now: the plan answers from the last good revision, with a warning that says why.
      let refused = try await e.run(["plan"], env: env)
      #expect(refused.status == 0, "\(refused)")
      #expect(refused.stderr.contains("warning: source: "), "\(refused)")
      #expect(refused.stderr.contains("TLS certificate of localhost is not trusted"), "\(refused)")
      #expect(refused.stderr.contains("[tls]; using the last good revision main@sha1:"), "\(refused)")
      // With no last good revision (a new state directory) there is nothing to answer from: an error.
      try Self.withSource(e, source, base: rendered.replacingOccurrences(of: e.stateDir, with: e.stateDir + "-fresh"))
      let fresh = try await e.run(["plan"], env: env)
      #expect(fresh.status == 1, "\(fresh)")
      #expect(fresh.stderr.contains("error: source: ") && fresh.stderr.contains("TLS certificate of localhost is not trusted"), "\(fresh)")
    }
  }
}
