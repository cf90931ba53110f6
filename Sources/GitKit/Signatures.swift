internal import CGit2
import Foundation

/// Commit signature verification (A5 `source.verify`).
public struct SignatureVerification: Sendable {
    public enum Mode: String, Sendable { case off, head }
    public var mode: Mode
    /// An ssh `allowed_signers` file: SSH signatures are checked with `ssh-keygen -Y verify`.
    public var allowedSigners: String?
    /// A GnuPG home directory holding the trusted keyring: OpenPGP signatures are checked with `gpg --verify`.
    public var gpgHome: String?

    public init(mode: Mode = .off, allowedSigners: String? = nil, gpgHome: String? = nil) {
        self.mode = mode
        self.allowedSigners = allowedSigners
        self.gpgHome = gpgHome
    }

    public static let off = SignatureVerification()
}

extension GitMirror {
    /// Throws `.signature` with the reason when `commit` is unsigned or its signature does
    /// not verify against the configured keys.
    public func verifySignature(commit: String, policy: SignatureVerification) throws(GitError) {
        guard policy.mode != .off else { return }
        throw GitError(.signature, "signature verification is not available in this build; commit \(commit.prefix(12)) not used")
    }
}
