/// An error from GitKit: a stable code, a message for people, and libgit2's error class
/// when the failure came from libgit2. Messages never contain credentials: URLs are
/// redacted and known secrets are masked before an error is built (`Redaction.scrub(_:secrets:urls: true)`).
public struct GitError: Error, Sendable, Equatable, CustomStringConvertible {
  public enum Code: String, Sendable {
    /// The remote could not be reached (connection refused, DNS, timeout while connecting).
    case unreachable
    /// The remote rejected our credentials, or we had none to offer.
    case authentication
    /// The SSH host key is unknown or does not match known_hosts.
    case hostKey = "host-key"
    /// TLS failed: the server's certificate is not trusted (does not chain to the CA
    /// bundle, or does not name the host), the handshake failed, or the CA bundle is unusable.
    case tls
    /// A network operation exceeded its deadline.
    case timeout
    /// The reference or commit does not exist in the mirror.
    case notFound = "not-found"
    /// The mirror on disk is unreadable or inconsistent.
    case corruptMirror = "corrupt-mirror"
    /// The tracked reference moved to a commit that does not descend from the last applied one.
    case historyRewritten = "history-rewritten"
    /// The commit's signature is missing or does not verify.
    case signature
    /// A push was rejected because the remote moved (non-fast-forward).
    case nonFastForward = "non-fast-forward"
    /// The remote rejected a push for another reason.
    case pushRejected = "push-rejected"
    /// Invalid input (URL, ref, path, configuration).
    case invalidArgument = "invalid-argument"
    /// Any other libgit2 or system failure.
    case other
  }

  public var code: Code
  public var message: String
  /// libgit2's error class (`git_error_t`) when known, for diagnostics; 0 otherwise.
  public var libgit2Class: Int32
  /// libgit2's return code (`git_error_code`) when known; 0 otherwise.
  public var libgit2Code: Int32

  public init(_ code: Code, _ message: String, libgit2Class: Int32 = 0, libgit2Code: Int32 = 0) {
    self.code = code
    self.message = message
    self.libgit2Class = libgit2Class
    self.libgit2Code = libgit2Code
  }

  public var description: String { "\(code.rawValue): \(message)" }
}
