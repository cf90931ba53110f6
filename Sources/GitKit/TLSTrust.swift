internal import CGit2
import Foundation
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// Which CA bundle libgit2 trusts for https remotes.
///
/// libgit2's trust store is process-wide (`GIT_OPT_SET_SSL_CERT_LOCATIONS`), and Debian's
/// libgit2 uses mbedTLS, which reads neither `SSL_CERT_FILE` nor `GIT_SSL_CAINFO`. So each
/// https operation sets the bundle its source asks for (a private CA's PEM, or the system
/// bundle when none) and holds a process-wide lock while it runs: two sources with different
/// bundles in one process never see each other's trust. Operations on other transports
/// take no lock.
enum TLSTrust {
  /// The bundle libgit2 was last given; nil while it still has its built-in default.
  private static let current = Mutex<String?>(nil)

  /// The system bundle mbedTLS is reset to after an operation that used another one.
  static let systemBundle = "/etc/ssl/certs/ca-certificates.crt"

  /// Runs `body` (an operation on `location`) trusting `caFile` when it is an https remote.
  static func during<T>(_ location: GitURL, caFile: String?, _ body: () throws(GitError) -> T) throws(GitError) -> T {
    guard location.scheme == .https else { return try body() }
    return try current.withLock { (applied: inout String?) throws(GitError) -> T in
      let wanted = caFile ?? (applied == nil ? nil : systemBundle)
      if let wanted, wanted != applied {
        try load(wanted, configured: caFile != nil)
        applied = wanted
      }
      return try body()
    }
  }

  /// Gives libgit2 the bundle; only a regular, readable file is accepted (a FIFO would block
  /// the parser, a directory is not a bundle).
  private static func load(_ path: String, configured: Bool) throws(GitError) {
    var st = stat()
    let what = configured ? "the CA bundle \(path)" : "the system CA bundle \(path)"
    guard stat(path, &st) == 0 else {
      throw GitError(.tls, "cannot read \(what): \(String(cString: strerror(errno)))")
    }
    guard (st.st_mode & S_IFMT) == S_IFREG else { throw GitError(.tls, "\(what) is not a regular file") }
    let rc = ytempire_git_set_ssl_cert_locations(path, nil)
    if rc < 0 {
      var detail = "not a PEM certificate bundle"
      if let e = git_error_last(), let m = e.pointee.message { detail = String(cString: m) }
      throw GitError(.tls, "cannot load \(what): \(detail)")
    }
  }

  /// The message for a certificate that did not verify.
  static func untrusted(host: String, caFile: String?) -> String {
    var m = "TLS certificate of \(host) is not trusted: it does not chain to "
    m +=
      caFile.map { "the CA bundle \($0)" } ?? "the system CA bundle (set source.caFile, GIT_SSL_CAINFO or SSL_CERT_FILE for a private CA)"
    m += ", or it does not name \(host)"
    if GitURL.isIPAddress(host) {
      m += " (libgit2's TLS (mbedTLS) matches certificates by DNS name only; use a host name instead of the IP address)"
    }
    return m
  }
}
