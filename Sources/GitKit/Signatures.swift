import Basics
internal import CGit2
import Foundation

/// Commit signature verification (A5 `source.verify`).
///
/// `head` verifies the commit the ref resolves to (not its ancestors), like Flux's
/// `verify.mode: head`. SSH signatures are checked with `ssh-keygen -Y verify` against an
/// `allowed_signers` file (namespace `git`); OpenPGP signatures with `gpg --verify` against
/// the keyring in a GnuPG home directory, accepted only on GOODSIG + VALIDSIG and no
/// expired/revoked/bad status. A commit that fails is never used; the reason is reported.
public struct SignatureVerification: Sendable {
  public enum Mode: String, Sendable { case off, head }
  public var mode: Mode
  /// An ssh `allowed_signers` file.
  public var allowedSigners: String?
  /// A GnuPG home directory holding the trusted public keys.
  public var gpgHome: String?

  public init(mode: Mode = .off, allowedSigners: String? = nil, gpgHome: String? = nil) {
    self.mode = mode
    self.allowedSigners = allowedSigners
    self.gpgHome = gpgHome
  }

  public static let off = SignatureVerification()
}

/// Who signed a verified commit.
public struct VerifiedSignature: Sendable, Equatable {
  public enum Kind: String, Sendable { case ssh, openpgp }
  public var kind: Kind
  /// The ssh principal, or the OpenPGP fingerprint of the signing key.
  public var signer: String
}

extension GitMirror {
  /// Verifies `commit`'s signature; throws `.signature` with the reason when it is
  /// unsigned, signed by an unknown key, or does not verify.
  @discardableResult
  public func verifySignature(commit: String, policy: SignatureVerification) throws(GitError) -> VerifiedSignature? {
    guard policy.mode != .off else { return nil }
    let (signature, data) = try withLock { () throws(GitError) -> (Data, Data) in
      let repo = try open()
      return try Self.extractSignature(repo, commit: commit)
    }
    let short = String(commit.prefix(12))
    let text = String(decoding: signature, as: UTF8.self)
    let tmp = FileManager.default.temporaryDirectory.path + "/ytempire-verify-\(UUID().uuidString.prefix(8))"
    do {
      try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o700])
    } catch {
      throw GitError(.other, "cannot create a temporary directory: \(error.localizedDescription)")
    }
    defer { try? FileManager.default.removeItem(atPath: tmp) }
    let sigPath = tmp + "/sig"
    let dataPath = tmp + "/data"
    do {
      try signature.write(to: URL(fileURLWithPath: sigPath))
      try data.write(to: URL(fileURLWithPath: dataPath))
    } catch {
      throw GitError(.other, "cannot write signature files: \(error.localizedDescription)")
    }
    if text.contains("-----BEGIN SSH SIGNATURE-----") {
      guard let allowed = policy.allowedSigners else {
        throw GitError(.signature, "commit \(short) has an SSH signature but no allowedSigners file is configured")
      }
      return try Self.verifySSH(sig: sigPath, data: data, allowedSigners: allowed, short: short)
    }
    if text.contains("-----BEGIN PGP SIGNATURE-----") {
      guard let home = policy.gpgHome else {
        throw GitError(.signature, "commit \(short) has an OpenPGP signature but no gpgHome is configured")
      }
      return try Self.verifyGPG(sig: sigPath, data: dataPath, home: home, short: short)
    }
    throw GitError(.signature, "commit \(short) has a signature of an unsupported kind (not SSH or OpenPGP)")
  }

  static func extractSignature(_ repo: Repository, commit: String) throws(GitError) -> (Data, Data) {
    guard let id = ObjectID(hex: commit) else { throw GitError(.invalidArgument, "bad commit id \(commit)") }
    var oid = id.oid
    var sig = git_buf()
    var signed = git_buf()
    defer {
      git_buf_dispose(&sig)
      git_buf_dispose(&signed)
    }
    let rc = git_commit_extract_signature(&sig, &signed, repo.pointer, &oid, nil)
    if rc == GIT_ENOTFOUND.rawValue {
      throw GitError(.signature, "commit \(commit.prefix(12)) is not signed")
    }
    try LibGit2.check(rc, "cannot read the signature of \(commit.prefix(12))")
    return (Data(bytes: sig.ptr, count: sig.size), Data(bytes: signed.ptr, count: signed.size))
  }

  static func verifySSH(sig: String, data: Data, allowedSigners: String, short: String) throws(GitError) -> VerifiedSignature {
    guard FileManager.default.isReadableFile(atPath: allowedSigners) else {
      throw GitError(.signature, "allowedSigners file \(allowedSigners) is not readable; commit \(short) not verified")
    }
    let find: Subprocess.Output
    do { find = try Subprocess.run(["ssh-keygen", "-Y", "find-principals", "-f", allowedSigners, "-s", sig]) } catch {
      throw GitError(.signature, "cannot run ssh-keygen: \(error.reason)")
    }
    let principals = String(decoding: find.stdout, as: UTF8.self).split(separator: "\n").map(String.init).filter { !$0.isEmpty }
    guard find.status == 0, let principal = principals.first else {
      throw GitError(.signature, "commit \(short) is signed by an SSH key that is not in \(allowedSigners)")
    }
    let verify: Subprocess.Output
    do {
      verify = try Subprocess.run(
        ["ssh-keygen", "-Y", "verify", "-f", allowedSigners, "-I", principal, "-n", "git", "-s", sig], stdin: data)
    } catch {
      throw GitError(.signature, "cannot run ssh-keygen: \(error.reason)")
    }
    guard verify.status == 0 else {
      let why = String(decoding: verify.stderr + verify.stdout, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
      throw GitError(.signature, "SSH signature of commit \(short) does not verify: \(why.split(separator: "\n").last ?? "")")
    }
    return VerifiedSignature(kind: .ssh, signer: principal)
  }

  static func verifyGPG(sig: String, data: String, home: String, short: String) throws(GitError) -> VerifiedSignature {
    let out: Subprocess.Output
    do {
      out = try Subprocess.run(["gpg", "--homedir", home, "--batch", "--no-tty", "--status-fd", "1", "--verify", sig, data])
    } catch {
      throw GitError(.signature, "cannot run gpg: \(error.reason)")
    }
    let status = String(decoding: out.stdout, as: UTF8.self).split(separator: "\n").filter { $0.hasPrefix("[GNUPG:] ") }
    func has(_ token: String) -> [String]? {
      status.first { $0.split(separator: " ").dropFirst().first.map(String.init) == token }.map {
        $0.split(separator: " ").map(String.init)
      }
    }
    for bad in ["BADSIG", "EXPSIG", "EXPKEYSIG", "REVKEYSIG", "ERRSIG"] {
      if let f = has(bad) {
        let reason = bad == "ERRSIG" ? "signed by a key that is not in \(home)" : "\(bad) from key \(f.count > 2 ? f[2] : "?")"
        throw GitError(.signature, "OpenPGP signature of commit \(short) does not verify: \(reason)")
      }
    }
    guard out.status == 0, has("GOODSIG") != nil, let valid = has("VALIDSIG"), valid.count > 2 else {
      throw GitError(.signature, "OpenPGP signature of commit \(short) does not verify (gpg exit \(out.status))")
    }
    return VerifiedSignature(kind: .openpgp, signer: valid[2])
  }
}
