import Foundation
import TestSupport
import Testing

@testable import GitKit

@Suite("GitKit commit signature verification")
struct SignatureTests {
  @Test("SSH: a commit signed by an allowed key verifies; unsigned or unknown-key commits are refused with the reason")
  func sshSignatures() async throws {
    let s = try Scratch()
    let keys = s.dir.sub("keys")
    try FileManager.default.createDirectory(atPath: keys, withIntermediateDirectories: true)
    try Processes.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice", "-f", keys + "/alice"])
    try Processes.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "mallory", "-f", keys + "/mallory"])
    let pub = try String(contentsOfFile: keys + "/alice.pub", encoding: .utf8)
    let allowed = keys + "/allowed_signers"
    try "alice@example.com namespaces=\"git\" \(pub)".write(toFile: allowed, atomically: true, encoding: .utf8)
    func sign(_ key: String) -> [String] { ["-c", "gpg.format=ssh", "-c", "user.signingkey=\(keys)/\(key)"] }

    try s.repo.write(["a.yaml": channelYAML("a")])
    try s.repo.git("add", "-A")
    try s.repo.git(sign("alice") + ["commit", "-q", "-S", "-m", "signed"])
    let good = try s.repo.head()
    let policy = SignatureVerification(mode: .head, allowedSigners: allowed)
    let src = try s.source(verify: policy)
    let r1 = await src.sync()
    #expect(r1.error == nil, "\(String(describing: r1.error))")
    #expect(r1.revision?.commit == good)
    #expect(try src.mirror.verifySignature(commit: good, policy: policy) == VerifiedSignature(kind: .ssh, signer: "alice@example.com"))

    // Unsigned: refused, the verified revision stays.
    let unsigned = try s.repo.commit("unsigned", files: ["b.yaml": channelYAML("b")])
    let r2 = await src.sync()
    #expect(r2.error?.code == .signature)
    #expect(r2.error?.message.contains("not signed") == true)
    #expect(r2.revision?.commit == good)
    #expect(r2.latest?.commit == unsigned)

    // Signed by a key that is not allowed.
    try s.repo.write(["c.yaml": channelYAML("c")])
    try s.repo.git("add", "-A")
    try s.repo.git(sign("mallory") + ["commit", "-q", "-S", "-m", "mallory"])
    let r3 = await src.sync()
    #expect(r3.error?.code == .signature)
    #expect(r3.error?.message.contains("not in") == true, "\(String(describing: r3.error))")
    #expect(r3.revision?.commit == good)

    // Verification off: the newest commit is used.
    let plain = try s.source()
    #expect(await plain.sync().revision?.commit == (try s.repo.head()))
  }

  @Test("OpenPGP: a commit signed by a key in the keyring verifies; another keyring refuses it")
  func gpgSignatures() async throws {
    let s = try Scratch()
    let home = s.dir.sub("gnupg")
    let other = s.dir.sub("gnupg-other")
    for h in [home, other] {
      try FileManager.default.createDirectory(atPath: h, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }
    defer {
      for h in [home, other] { _ = try? Processes.run(["gpgconf", "--homedir", h, "--kill", "all"], check: false) }
    }
    try Processes.run([
      "gpg", "--homedir", home, "--batch", "--passphrase", "", "--quick-gen-key", "Alice <alice@example.com>", "ed25519", "sign", "never",
    ])
    try Processes.run([
      "gpg", "--homedir", other, "--batch", "--passphrase", "", "--quick-gen-key", "Bob <bob@example.com>", "ed25519", "sign", "never",
    ])
    let listing = try Processes.run(["gpg", "--homedir", home, "--batch", "--with-colons", "--list-secret-keys"]).stdout
    let fpr = try #require(
      listing.split(separator: "\n").first { $0.hasPrefix("fpr:") }?.split(separator: ":", omittingEmptySubsequences: false)[9])

    try s.repo.write(["a.yaml": channelYAML("a")])
    try s.repo.git("add", "-A")
    try s.repo.git(["-c", "user.signingkey=\(fpr)", "commit", "-q", "-S", "-m", "gpg signed"], env: ["GNUPGHOME": home])
    let good = try s.repo.head()

    let ok = try s.source(verify: SignatureVerification(mode: .head, gpgHome: home))
    let r = await ok.sync()
    #expect(r.error == nil, "\(String(describing: r.error))")
    #expect(r.revision?.commit == good)
    #expect(try ok.mirror.verifySignature(commit: good, policy: SignatureVerification(mode: .head, gpgHome: home))?.signer == String(fpr))

    let wrong = try s.source(verify: SignatureVerification(mode: .head, gpgHome: other))
    let r2 = await wrong.sync()
    #expect(r2.error?.code == .signature)
    #expect(r2.revision == nil, "never used")
    #expect(r2.error?.message.contains("not in") == true, "\(String(describing: r2.error))")

    // An SSH-only policy cannot verify an OpenPGP signature.
    let sshOnly = try s.source(verify: SignatureVerification(mode: .head, allowedSigners: "/nonexistent"))
    #expect(await sshOnly.sync().error?.message.contains("no gpgHome") == true)
  }
}
