import Basics
internal import CGit2
import Foundation

/// How GitKit authenticates to a remote. Secrets are held in memory only and never logged.
public enum GitAuth: Sendable {
  case none
  /// HTTPS: sent as the password of HTTP basic auth (user from the URL, else `x-access-token`,
  /// which GitHub, Gitea and Bitbucket accept; GitLab accepts any user with a token).
  case token(String)
  /// SSH: a private key file (no passphrase) and the known_hosts file the host key is
  /// checked against. `insecureSkipHostKeyCheck` is the explicit opt-out.
  case sshKey(privateKey: String, knownHosts: String?, insecureSkipHostKeyCheck: Bool = false)

  /// Secret strings to mask wherever text is shown.
  public var secrets: [String] {
    if case .token(let t) = self { return [t] }
    return []
  }
}

/// Deadlines for network operations.
///
/// libgit2 1.5 has no connect or I/O timeout options (GIT_OPT_SET_SERVER_CONNECT_TIMEOUT
/// arrived in 1.7), so GitKit enforces them itself:
/// - connect: before libgit2 connects, the host is probed with a non-blocking TCP connect
///   bounded by `connect` (for git://, ssh:// and http(s):// URLs); an unreachable or
///   black-holed host fails fast with `.unreachable` / `.timeout`.
/// - transfer: every libgit2 progress callback (sideband messages, indexer progress, push
///   progress, credential and certificate callbacks) checks the deadline and aborts the
///   operation when it has passed. A server that stops sending altogether is cut off by the
///   async wrapper, which stops waiting at the deadline (the worker thread finishes on its own).
public struct GitTimeouts: Sendable {
  public var connect: Duration
  public var transfer: Duration
  public init(connect: Duration = .seconds(15), transfer: Duration = .seconds(300)) {
    self.connect = connect
    self.transfer = transfer
  }
}

/// The state libgit2's remote callbacks see through their payload pointer.
final class CallbackContext {
  let auth: GitAuth
  let url: GitURL
  let deadline: ContinuousClock.Instant
  var credentialAttempts = 0
  var offered: Set<UInt32> = []
  var timedOut = false
  var hostKeyError: String?
  var tlsError: String?
  var pushRejections: [(String, String)] = []
  let caFile: String?

  init(auth: GitAuth, url: GitURL, timeouts: GitTimeouts, caFile: String? = nil) {
    self.auth = auth
    self.url = url
    self.caFile = caFile
    self.deadline = ContinuousClock.now + timeouts.transfer
  }

  func expired() -> Bool {
    if ContinuousClock.now > deadline { timedOut = true }
    return timedOut
  }

  /// Remote callbacks with this context as payload. The context must outlive their use.
  /// Why credentials must not be given to `asking` (nil: they may).
  func refusal(_ asking: GitURL) -> String? {
    guard case .none = auth else {
      if asking.host.lowercased() != url.host.lowercased() || asking.port != url.port {
        return
          "authentication refused: \(asking.display) is not the configured host \(url.host):\(url.port) (a redirect?); credentials are sent only to the host they were configured for"
      }
      if case .token = auth, asking.scheme == .http, !HostPort.isLoopback(asking.host) {
        return "authentication refused: the token is not sent over plain http:// to \(asking.host); use https://"
      }
      return nil
    }
    return nil
  }

  func callbacks() -> git_remote_callbacks {
    var cb = git_remote_callbacks()
    git_remote_init_callbacks(&cb, UInt32(GIT_REMOTE_CALLBACKS_VERSION))
    cb.payload = Unmanaged.passUnretained(self).toOpaque()
    cb.credentials = { out, urlPointer, usernameFromURL, allowed, payload in
      let ctx = Unmanaged<CallbackContext>.fromOpaque(payload!).takeUnretainedValue()
      if ctx.expired() { return -1 }
      ctx.credentialAttempts += 1
      // A credential goes only to the host it was configured for (not after a redirect to
      // another one), and a token only over TLS unless that host is loopback.
      if let urlPointer, let asking = try? GitURL(String(cString: urlPointer)) {
        if let refusal = ctx.refusal(asking) {
          git_error_set_str(Int32(GIT_ERROR_CALLBACK.rawValue), refusal)
          return GIT_EAUTH.rawValue
        }
      }
      // libgit2 asks again after a rejection: offering the same kind of credential a
      // second time means it was refused. (ssh asks for a user name first, then a key.)
      func once(_ kind: git_credential_t) -> Bool {
        if ctx.offered.contains(kind.rawValue) {
          git_error_set_str(Int32(GIT_ERROR_CALLBACK.rawValue), "authentication failed: the remote rejected the credentials")
          return false
        }
        ctx.offered.insert(kind.rawValue)
        return true
      }
      let user = usernameFromURL.map { String(cString: $0) }
      switch ctx.auth {
      case .token(let token) where allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT.rawValue != 0:
        guard once(GIT_CREDENTIAL_USERPASS_PLAINTEXT) else { return GIT_EAUTH.rawValue }
        return git_credential_userpass_plaintext_new(out, user ?? "x-access-token", token)
      case .sshKey(let key, _, _) where allowed & GIT_CREDENTIAL_SSH_KEY.rawValue != 0:
        guard once(GIT_CREDENTIAL_SSH_KEY) else { return GIT_EAUTH.rawValue }
        return git_credential_ssh_key_new(out, user ?? "git", nil, key, nil)
      case .sshKey where allowed & GIT_CREDENTIAL_USERNAME.rawValue != 0:
        guard once(GIT_CREDENTIAL_USERNAME) else { return GIT_EAUTH.rawValue }
        return git_credential_username_new(out, user ?? "git")
      default:
        git_error_set_str(
          Int32(GIT_ERROR_CALLBACK.rawValue), "authentication required: the remote asked for credentials and none are configured")
        return GIT_EAUTH.rawValue
      }
    }
    cb.certificate_check = { cert, valid, host, payload in
      let ctx = Unmanaged<CallbackContext>.fromOpaque(payload!).takeUnretainedValue()
      if ctx.expired() { return -1 }
      guard let cert else { return -1 }
      if cert.pointee.cert_type == GIT_CERT_HOSTKEY_LIBSSH2 {
        let hk = UnsafeRawPointer(cert).assumingMemoryBound(to: git_cert_hostkey.self).pointee
        var key: String?
        if hk.type.rawValue & GIT_CERT_SSH_RAW.rawValue != 0, let raw = hk.hostkey {
          key = Data(bytes: raw, count: hk.hostkey_len).base64EncodedString()
        }
        let hostName = host.map { String(cString: $0) } ?? ctx.url.host
        return ctx.checkHostKey(host: hostName, keyBase64: key) ? 0 : GIT_ECERTIFICATE.rawValue
      }
      // TLS: libgit2 has verified the chain (against the trusted bundle, see TLSTrust)
      // and the host name; a failure is reported as what it is, naming the host.
      if valid != 0 { return 0 }
      let hostName = host.map { String(cString: $0) } ?? ctx.url.host
      ctx.tlsError = TLSTrust.untrusted(host: hostName, caFile: ctx.caFile)
      return GIT_ECERTIFICATE.rawValue
    }
    cb.sideband_progress = { _, _, payload in
      let ctx = Unmanaged<CallbackContext>.fromOpaque(payload!).takeUnretainedValue()
      return ctx.expired() ? -1 : 0
    }
    cb.transfer_progress = { _, payload in
      let ctx = Unmanaged<CallbackContext>.fromOpaque(payload!).takeUnretainedValue()
      return ctx.expired() ? -1 : 0
    }
    cb.push_transfer_progress = { _, _, _, payload in
      let ctx = Unmanaged<CallbackContext>.fromOpaque(payload!).takeUnretainedValue()
      return ctx.expired() ? -1 : 0
    }
    cb.push_update_reference = { refname, status, payload in
      let ctx = Unmanaged<CallbackContext>.fromOpaque(payload!).takeUnretainedValue()
      if let status {
        ctx.pushRejections.append((refname.map { String(cString: $0) } ?? "?", String(cString: status)))
      }
      return 0
    }
    return cb
  }

  /// The SSH host key policy: known_hosts must list the key for the host (and port), unless
  /// the configuration opts out explicitly. Records the reason when it refuses.
  func checkHostKey(host: String, keyBase64: String?) -> Bool {
    guard case .sshKey(_, let knownHosts, let skip) = auth else {
      hostKeyError = "ssh host key of \(host) cannot be checked: no ssh key and known_hosts configured"
      return false
    }
    if skip { return true }
    guard let knownHosts else {
      hostKeyError = "ssh host key of \(host) cannot be checked: no known_hosts configured (set knownHosts, or opt out explicitly)"
      return false
    }
    guard let keyBase64 else {
      hostKeyError = "ssh host key of \(host) not available for checking"
      return false
    }
    switch KnownHosts.check(file: knownHosts, host: host, port: url.port, keyBase64: keyBase64) {
    case .match: return true
    case .mismatch:
      hostKeyError = "ssh host key for \(host) does not match \(knownHosts)"
      return false
    case .unknown:
      hostKeyError = "ssh host \(host) is not in \(knownHosts)"
      return false
    }
  }

  /// Turns a libgit2 failure into an error, using what the callbacks observed.
  func error(_ rc: Int32, _ context: String) -> GitError {
    var e = LibGit2.error(rc, context, secrets: auth.secrets)
    if timedOut {
      e.code = .timeout
      e.message = "\(context): transfer did not finish within its deadline"
    } else if let t = tlsError {
      e.code = .tls
      e.message = "\(context): \(t)"
    } else if let h = hostKeyError {
      e.code = .hostKey
      e.message = "\(context): \(h)"
    } else if credentialAttempts > 0 && (rc == GIT_EAUTH.rawValue || e.code == .authentication) {
      e.code = .authentication
    }
    return e
  }
}

/// A parsed remote location: a local path, or a URL with scheme, host and port.
struct GitURL: Sendable {
  enum Scheme: String, Sendable { case local, file, git, http, https, ssh }
  var scheme: Scheme
  /// What libgit2 is given (an absolute path for local repositories).
  var libgit2URL: String
  var host: String
  var port: Int
  /// The URL with any userinfo removed, for messages and mirror naming.
  var display: String

  var isRemote: Bool { scheme != .local && scheme != .file }

  /// An IPv4 or IPv6 literal (brackets allowed), not a DNS name.
  static func isIPAddress(_ host: String) -> Bool {
    var h = host
    if h.hasPrefix("["), h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
    var v4 = in_addr()
    var v6 = in6_addr()
    return inet_pton(AF_INET, h, &v4) == 1 || inet_pton(AF_INET6, h, &v6) == 1
  }

  /// A local source must be an existing git repository (bare, or with `.git` inside).
  func checkLocalRepository() throws(GitError) {
    var path = libgit2URL
    if scheme == .file { path = String(path.dropFirst("file://".count)) }
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
      throw GitError(.notFound, "no repository at \(display): the path does not exist")
    }
    guard isDir.boolValue else { throw GitError(.notFound, "no repository at \(display): it is a file, not a directory") }
    let fm = FileManager.default
    let bare = fm.fileExists(atPath: path + "/HEAD") && fm.fileExists(atPath: path + "/objects")
    guard bare || fm.fileExists(atPath: path + "/.git") else {
      throw GitError(
        .notFound, "\(display) is a directory but not a git repository (to validate a plain directory, give it as PATH without --repo)")
    }
  }

  init(_ raw: String, relativeTo cwd: String = FileManager.default.currentDirectoryPath) throws(GitError) {
    if let r = raw.range(of: "://") {
      let s = raw[..<r.lowerBound].lowercased()
      guard let scheme = Scheme(rawValue: s), scheme != .local else {
        throw GitError(.invalidArgument, "unsupported URL scheme '\(s)' (use a path, file://, git://, http(s):// or ssh://)")
      }
      self.scheme = scheme
      libgit2URL = raw
      display = Redaction.urls(in: raw)
      if scheme == .file {
        host = ""
        port = 0
        return
      }
      var authority = raw[r.upperBound...].prefix { $0 != "/" }
      if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
      let defaultPort =
        switch scheme {
        case .git: 9418
        case .ssh: 22
        case .http: 80
        case .https: 443
        default: 0
        }
      do throws(HostPort.ParseError) {
        let hp = try HostPort.parse(String(authority), defaultPort: defaultPort)
        host = hp.host
        port = hp.port
      } catch .missingHost {
        throw GitError(.invalidArgument, "URL has no host: \(display)")
      } catch .portOutOfRange {
        throw GitError(.invalidArgument, "URL has a port outside 1-65535: \(display)")
      } catch {
        throw GitError(.invalidArgument, "URL \(display): \(error)")
      }
      return
    }
    if raw.contains("@"), raw.contains(":"), !raw.hasPrefix("/"), !raw.hasPrefix(".") {
      throw GitError(.invalidArgument, "scp-style address '\(Redaction.urls(in: raw))' is not supported; write ssh://user@host/path")
    }
    scheme = .local
    let abs = raw.hasPrefix("/") ? raw : (cwd as NSString).appendingPathComponent(raw)
    libgit2URL = (abs as NSString).standardizingPath
    host = ""
    port = 0
    display = libgit2URL
  }

  /// Fails fast when the host does not accept TCP connections within `timeout`, or the
  /// local path is not a repository (libgit2 would say "unsupported URL protocol" for a
  /// missing path and fail obscurely on a plain directory).
  func probe(timeout: Duration) throws(GitError) {
    guard isRemote else { return try checkLocalRepository() }
    let ms = Int32(clamping: timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
    var hints = addrinfo()
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    hints.ai_family = AF_UNSPEC
    var res: UnsafeMutablePointer<addrinfo>?
    let grc = getaddrinfo(host, String(port), &hints, &res)
    guard grc == 0, let first = res else {
      throw GitError(.unreachable, "cannot resolve host \(host) for \(display)")
    }
    defer { freeaddrinfo(res) }
    var lastError = "connection failed"
    var timedOut = false
    var ai: UnsafeMutablePointer<addrinfo>? = first
    while let a = ai {
      defer { ai = a.pointee.ai_next }
      let fd = socket(a.pointee.ai_family, a.pointee.ai_socktype, a.pointee.ai_protocol)
      if fd < 0 { continue }
      defer { close(fd) }
      let flags = fcntl(fd, F_GETFL, 0)
      _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
      let rc = connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen)
      if rc == 0 { return }
      guard errno == EINPROGRESS else {
        lastError = String(cString: strerror(errno))
        continue
      }
      var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
      let prc = poll(&pfd, 1, ms)
      if prc == 0 {
        timedOut = true
        lastError = "connect timed out"
        continue
      }
      var soerr: Int32 = 0
      var len = socklen_t(MemoryLayout<Int32>.size)
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len)
      if soerr == 0 { return }
      lastError = String(cString: strerror(soerr))
    }
    throw GitError(timedOut ? .timeout : .unreachable, "cannot connect to \(host):\(port) for \(display): \(lastError)")
  }
}

/// known_hosts lookup through `ssh-keygen -F` (which understands hashed entries and
/// `[host]:port` forms), then an exact comparison of the key blob.
enum KnownHosts {
  enum Result { case match, mismatch, unknown }

  static func check(file: String, host: String, port: Int, keyBase64: String) -> Result {
    let name = port == 22 || port == 0 ? host : "[\(host)]:\(port)"
    guard let out = try? Subprocess.run(["ssh-keygen", "-F", name, "-f", file]), out.status == 0 else {
      return .unknown
    }
    var found = false
    for line in String(decoding: out.stdout, as: UTF8.self).split(separator: "\n") where !line.hasPrefix("#") {
      let fields = line.split(separator: " ")
      guard fields.count >= 3 else { continue }
      // Marker lines (@revoked / @cert-authority) shift the fields by one.
      if fields[0] == "@revoked", fields.count >= 4, fields[3] == keyBase64 { return .mismatch }
      if fields[0].hasPrefix("@") { continue }
      found = true
      if fields[2] == keyBase64 { return .match }
    }
    return found ? .mismatch : .unknown
  }
}
