import Foundation
import TestSupport
import Testing

@testable import GitKit

/// https sources over real TLS: `git http-backend` behind a TLS front end with a certificate
/// from a CA the test makes. Serialized: libgit2's trust store is process-wide (GitKit sets
/// it per operation under a lock, which these tests exercise in turn).
@Suite("git over TLS (https sources)", .serialized)
struct GitTLSTests {
  final class Rig: Sendable {
    let s: Scratch
    let ca: TestCA
    let server: GitHTTPServer
    let token = "tok_\(UUID().uuidString)"
    let head: String

    init() throws {
      s = try Scratch()
      head = try s.repo.commit("one", files: ["a.yaml": channelYAML("a")])
      let served = s.dir.sub("https")
      ca = try TestCA(in: s.dir.sub("pki"))
      server = try GitHTTPServer.serving(s.repo.path, at: served, token: token, tls: (ca.certificate, ca.key))
    }

    func source(url: String? = nil, caFile: String?, state: String) throws -> GitSource {
      try GitSource(
        GitSourceConfig(
          url: url ?? server.url("empire.git"), stateDir: s.dir.sub(state), auth: .token(token),
          timeouts: GitTimeouts(connect: .seconds(10), transfer: .seconds(60)), caFile: caFile))
    }

    deinit { server.stop() }
  }

  @Test("a certificate from the configured CA is trusted: fetch and status push work over TLS, the token goes along")
  func trustedPrivateCA() async throws {
    let rig = try Rig()
    let src = try rig.source(caFile: rig.ca.caFile, state: "ok")
    let r = await src.sync()
    #expect(r.error == nil, "\(String(describing: r.error))")
    #expect(r.revision?.commit == rig.head)
    let w = try await src.writeStatus(["summary.yaml": Array("ok: true\n".utf8)], push: true)
    #expect(w.pushed)
  }

  @Test("without the CA the certificate is a TLS error naming the host, not an ssh host-key error; the next source with the CA still works")
  func untrustedIsATLSError() async throws {
    let rig = try Rig()
    let bare = await (try rig.source(caFile: nil, state: "system")).sync()
    let e = try #require(bare.error)
    #expect(e.code == .tls, "\(e)")
    #expect(e.message.contains("TLS certificate of localhost is not trusted"), "\(e.message)")
    #expect(e.message.contains("system CA bundle"), "\(e.message)")
    #expect(!e.message.contains("host key") && !e.message.contains("user rejected"), "\(e.message)")
    #expect(!e.message.contains(rig.token))

    // Another CA than the signer: refused, naming the bundle that was used.
    let other = try TestCA(in: rig.s.dir.sub("pki-other"), name: "other")
    let wrong = await (try rig.source(caFile: other.caFile, state: "other")).sync()
    #expect(wrong.error?.code == .tls, "\(String(describing: wrong.error))")
    #expect(wrong.error?.message.contains("the CA bundle \(other.caFile)") == true, "\(String(describing: wrong.error))")

    // The trust store follows each source: the right CA works again after the wrong one,
    // and the system bundle is back for a source without a caFile.
    #expect(await (try rig.source(caFile: rig.ca.caFile, state: "ok")).sync().error == nil)
    #expect(await (try rig.source(caFile: nil, state: "system2")).sync().error?.code == .tls)
  }

  @Test("mbedTLS matches DNS names only: an IP-address URL is refused even with an IP SAN, and the message says to use a host name")
  func ipAddressURL() async throws {
    let rig = try Rig()
    let r = await (try rig.source(url: "https://127.0.0.1:\(rig.server.port)/empire.git", caFile: rig.ca.caFile, state: "ip")).sync()
    #expect(r.error?.code == .tls, "\(String(describing: r.error))")
    #expect(r.error?.message.contains("use a host name instead of the IP address") == true, "\(String(describing: r.error))")
  }

  @Test("a CA bundle that is not a regular file, or not PEM, is a clear TLS error and nothing is fetched")
  func unusableBundle() async throws {
    let rig = try Rig()
    let fifo = rig.s.dir.sub("ca.fifo")
    #expect(mkfifo(fifo, 0o600) == 0)
    let f = await (try rig.source(caFile: fifo, state: "fifo")).sync()
    #expect(f.error?.code == .tls)
    #expect(f.error?.message.contains("is not a regular file") == true, "\(String(describing: f.error))")
    let junk = rig.s.dir.sub("junk.pem")
    try "not a certificate\n".write(toFile: junk, atomically: true, encoding: .utf8)
    let j = await (try rig.source(caFile: junk, state: "junk")).sync()
    #expect(j.error?.code == .tls)
    #expect(j.error?.message.contains("cannot load the CA bundle \(junk)") == true, "\(String(describing: j.error))")
    let missing = await (try rig.source(caFile: rig.s.dir.sub("nope.pem"), state: "missing")).sync()
    #expect(missing.error?.code == .tls)
    #expect(missing.revision == nil)
  }

  @Test("the CA bundle comes from the configuration, else GIT_SSL_CAINFO, else SSL_CERT_FILE")
  func caFilePrecedence() {
    let env = ["GIT_SSL_CAINFO": "/git.pem", "SSL_CERT_FILE": "/ssl.pem"]
    #expect(GitSourceConfig.caFile(configured: "/cfg.pem", environment: env) == "/cfg.pem")
    #expect(GitSourceConfig.caFile(configured: nil, environment: env) == "/git.pem")
    #expect(GitSourceConfig.caFile(configured: nil, environment: ["SSL_CERT_FILE": "/ssl.pem"]) == "/ssl.pem")
    #expect(GitSourceConfig.caFile(configured: nil, environment: ["SSL_CERT_FILE": ""]) == nil)
    #expect(GitSourceConfig.caFile(configured: nil, environment: [:]) == nil)
  }
}
