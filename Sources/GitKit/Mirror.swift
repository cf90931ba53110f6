internal import CGit2
import EmpireModel
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// A bare mirror of one remote under the state directory:
/// `<stateDir>/git/mirrors/<name>-<hash of the URL>.git`, holding `refs/heads/*` and
/// `refs/tags/*` exactly as the remote has them (forced, pruned) and `HEAD` pointing where
/// the remote's HEAD points. GitKit's own refs live under `refs/ytempire/`, which fetches
/// never touch.
///
/// Every method blocks: call them from a dedicated thread (``GitSource`` does), never from
/// Swift's cooperative pool. Methods of one mirror are serialised across threads and
/// processes by an advisory lock file beside it.
public final class GitMirror: Sendable {
  public let url: String
  public let path: String
  let location: GitURL
  let auth: GitAuth
  let timeouts: GitTimeouts
  /// The CA bundle https certificates must chain to; nil for the system bundle.
  let caFile: String?

  public static let fetchRefspecs = ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"]

  public init(
    url: String, stateDir: String, auth: GitAuth = .none, timeouts: GitTimeouts = GitTimeouts(),
    caFile: String? = nil
  ) throws(GitError) {
    LibGit2.ensureInitialised()
    let loc = try GitURL(url)
    self.caFile = caFile
    self.url = url
    self.location = loc
    self.auth = auth
    self.timeouts = timeouts
    self.path = (stateDir as NSString).appendingPathComponent("git/mirrors/\(GitMirror.directoryName(for: loc.display))")
  }

  /// Whether status pushes and fetches cross a network (false for paths and file://).
  public var isRemote: Bool { location.isRemote }

  /// The URL with credentials removed, safe to show.
  public var displayURL: String { location.display }

  static func directoryName(for display: String) -> String {
    var oid = git_oid()
    _ = display.withCString { git_odb_hash(&oid, $0, strlen($0), GIT_OBJECT_BLOB) }
    let hash = ObjectID(oid).hex.prefix(12)
    let tail = display.split(whereSeparator: { $0 == "/" || $0 == ":" }).last.map(String.init) ?? "repo"
    var name = String(
      tail.unicodeScalars.map { CharacterSet.alphanumerics.contains($0) || $0 == "-" || $0 == "_" ? Character($0) : "_" }.prefix(40))
    if name.hasSuffix("_git") { name = String(name.dropLast(4)) }
    return "\(name)-\(hash).git"
  }

  // MARK: Locking

  func withLock<T>(_ body: () throws(GitError) -> T) throws(GitError) -> T {
    let dir = (path as NSString).deletingLastPathComponent
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let fd: Int32
    do { fd = try PrivateFile.open(path + ".lock", what: "the mirror's lock file", mode: 0o644) } catch {
      throw GitError(.other, error.message)
    }
    defer { close(fd) }
    while flock(fd, LOCK_EX) != 0 && errno == EINTR {}
    defer { flock(fd, LOCK_UN) }
    removeStaleRefLocks()
    return try body()
  }

  /// libgit2 updates a ref through `<ref>.lock` and renames it into place; a process killed
  /// in between (SIGKILL during a status commit) leaves the `.lock`, and every later update
  /// of that ref fails ("failed to lock file"). Only ytempire writes its mirror, and only
  /// under the mirror's flock, which this process holds now: any such file is stale.
  func removeStaleRefLocks() {
    let fm = FileManager.default
    var stale = ["HEAD.lock", "packed-refs.lock", "config.lock"].map { path + "/" + $0 }
    if let walk = fm.enumerator(atPath: path + "/refs") {
      var seen = 0
      while let rel = walk.nextObject() as? String, seen < 100_000 {
        seen += 1
        if rel.hasSuffix(".lock") { stale.append(path + "/refs/" + rel) }
      }
    }
    for p in stale {
      var st = stat()
      // Regular files only, never through a link.
      guard lstat(p, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
      unlink(p)
    }
  }

  // MARK: Opening

  /// Opens the mirror, or creates an empty one. A mirror that cannot be opened is moved
  /// aside (`.corrupt`, replacing an older one) and recreated; `recreated` says so.
  func openOrCreate() throws(GitError) -> (Repository, recreated: Bool) {
    if FileManager.default.fileExists(atPath: path) {
      do {
        let r = try Repository.openBare(path)
        // A repository whose object database or HEAD is unusable is not a mirror.
        _ = try r.odb()
        return (r, false)
      } catch {
        try discardCorrupt()
        return (try Repository.initBare(path), true)
      }
    }
    return (try Repository.initBare(path), false)
  }

  func discardCorrupt() throws(GitError) {
    let aside = path + ".corrupt"
    try? FileManager.default.removeItem(atPath: aside)
    do { try FileManager.default.moveItem(atPath: path, toPath: aside) } catch {
      try? FileManager.default.removeItem(atPath: path)
    }
    if FileManager.default.fileExists(atPath: path) {
      throw GitError(.corruptMirror, "corrupt mirror \(path) could not be removed")
    }
  }

  /// Opens an existing mirror for reading.
  func open() throws(GitError) -> Repository {
    guard FileManager.default.fileExists(atPath: path) else {
      throw GitError(.notFound, "no mirror of \(displayURL) yet; fetch first")
    }
    return try Repository.openBare(path)
  }

  // MARK: Fetch

  public struct FetchResult: Sendable {
    /// The remote's HEAD branch (e.g. `refs/heads/main`), when it advertises one.
    public var remoteHead: String?
    /// True when the mirror was corrupt and has been cloned again.
    public var recloned: Bool
    /// References whose target changed in this fetch.
    public var updatedRefs: [String]
  }

  /// Clones or fetches the remote into the mirror. A corrupt mirror (unreadable, or objects
  /// missing while fetching) is discarded and cloned again once.
  /// - Parameter also: references fetched besides branches and tags (`refs/pull/7/head`), each into itself.
  public func fetch(also: [String] = []) throws(GitError) -> FetchResult {
    try withLock { () throws(GitError) -> FetchResult in
      try location.probe(timeout: timeouts.connect)
      let (repo, recreated) = try openOrCreate()
      do throws(GitError) {
        var r = try fetch(into: repo, also: also)
        r.recloned = recreated
        return r
      } catch  where error.code == .corruptMirror {
        try discardCorrupt()
        let fresh = try Repository.initBare(path)
        var r = try fetch(into: fresh, also: also)
        r.recloned = true
        return r
      }
    }
  }

  /// Fetch for callers that already hold the lock.
  func fetchLocked(into repo: Repository) throws(GitError) -> FetchResult { try fetch(into: repo) }

  private func fetch(into repo: Repository, also: [String] = []) throws(GitError) -> FetchResult {
    try TLSTrust.during(location, caFile: caFile) { () throws(GitError) -> FetchResult in try fetchTrusted(into: repo, also: also) }
  }

  private func fetchTrusted(into repo: Repository, also: [String]) throws(GitError) -> FetchResult {
    let ctx = CallbackContext(auth: auth, url: location, timeouts: timeouts, caFile: caFile)
    var remote: OpaquePointer?
    try LibGit2.check(
      git_remote_create_anonymous(&remote, repo.pointer, location.libgit2URL), "invalid remote \(displayURL)", secrets: auth.secrets)
    defer { git_remote_free(remote) }

    var cb = ctx.callbacks()
    var rc = git_remote_connect(remote, GIT_DIRECTION_FETCH, &cb, nil, nil)
    guard rc == 0 else { throw classifyNetwork(ctx.error(rc, "cannot connect to \(displayURL)")) }
    defer { git_remote_disconnect(remote) }

    var heads: UnsafeMutablePointer<UnsafePointer<git_remote_head>?>?
    var count = 0
    var remoteHead: String?
    let before = refTargets(repo)
    if git_remote_ls(&heads, &count, remote) == 0, let heads {
      for i in 0..<count {
        guard let h = heads[i] else { continue }
        if String(cString: h.pointee.name) == "HEAD", let t = h.pointee.symref_target {
          remoteHead = String(cString: t)
        }
      }
    }
    var opts = git_fetch_options()
    git_fetch_options_init(&opts, UInt32(GIT_FETCH_OPTIONS_VERSION))
    opts.callbacks = cb
    opts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE
    opts.prune = GIT_FETCH_PRUNE
    try withStrarray(GitMirror.fetchRefspecs + also.map { "+\($0):\($0)" }) { (specs) throws(GitError) in
      rc = git_remote_download(remote, specs, &opts)
      guard rc == 0 else { throw classifyNetwork(ctx.error(rc, "cannot fetch from \(displayURL)")) }
      rc = git_remote_update_tips(remote, &cb, 0, GIT_REMOTE_DOWNLOAD_TAGS_NONE, "ytempire: fetch")
      guard rc == 0 else { throw ctx.error(rc, "cannot update the mirror of \(displayURL)") }
    }
    rc = git_remote_prune(remote, &cb)
    guard rc == 0 else { throw ctx.error(rc, "cannot prune the mirror of \(displayURL)") }
    if let remoteHead, repo.referenceExists(remoteHead) {
      try repo.setSymbolicReference("HEAD", to: remoteHead)
    }
    let after = refTargets(repo)
    let updated = Set(before.keys).union(after.keys).filter { before[$0] != after[$0] }.sorted()
    return FetchResult(remoteHead: remoteHead, recloned: false, updatedRefs: updated)
  }

  /// A transport failure during fetch is a network problem unless the mirror's own objects
  /// were at fault (indexer/ODB errors), which means a corrupt mirror.
  private func classifyNetwork(_ e: GitError) -> GitError {
    var e = e
    if e.code == .other && e.libgit2Class == Int32(GIT_ERROR_CALLBACK.rawValue) { e.code = .unreachable }
    if e.code == .notFound && (e.message.contains("repository") || e.message.contains("not found")) && location.isRemote == false {
      e.code = .unreachable
    }
    return e
  }

  func refTargets(_ repo: Repository) -> [String: String] {
    var out: [String: String] = [:]
    var iter: OpaquePointer?
    guard git_reference_iterator_glob_new(&iter, repo.pointer, "refs/*") == 0 else { return out }
    defer { git_reference_iterator_free(iter) }
    var ref: OpaquePointer?
    while git_reference_next(&ref, iter) == 0 {
      if let target = git_reference_target(ref) {
        out[String(cString: git_reference_name(ref))] = ObjectID(target).hex
      }
      git_reference_free(ref)
    }
    return out
  }

  // MARK: Resolve

  /// Resolves a branch, tag, full `refs/…` name, or full or abbreviated commit id (nil or
  /// empty: the remote's HEAD branch) to a commit in the mirror, and checks that the
  /// commit and its tree are readable (a mirror missing them is corrupt).
  public func resolve(_ ref: String?) throws(GitError) -> Revision {
    try withLock { () throws(GitError) -> Revision in
      let repo = try open()
      return try resolve(ref, in: repo)
    }
  }

  func resolve(_ ref: String?, in repo: Repository) throws(GitError) -> Revision {
    let rev = try lookup(ref, in: repo)
    do throws(GitError) {
      let c = try repo.commit(ObjectID(hex: rev.commit)!)
      _ = try c.tree()
    } catch {
      throw GitError(.corruptMirror, "mirror of \(displayURL) is missing objects of \(rev): \(error.message)")
    }
    return rev
  }

  private func lookup(_ ref: String?, in repo: Repository) throws(GitError) -> Revision {
    func named(_ full: String, _ short: String) throws(GitError) -> Revision {
      let (id, _) = try repo.peelToCommit(reference: full)
      return Revision(name: short, reference: full, commit: id.hex)
    }
    guard let ref, !ref.isEmpty, ref != "HEAD" else {
      guard let target = repo.symbolicTarget("HEAD"), repo.referenceExists(target) else {
        if repo.referenceExists("refs/heads/main") { return try named("refs/heads/main", "main") }
        throw GitError(.notFound, "\(displayURL) has no default branch (remote HEAD); name a ref")
      }
      return try named(target, target.hasPrefix("refs/heads/") ? String(target.dropFirst(11)) : target)
    }
    if ref.hasPrefix("refs/") {
      guard repo.referenceExists(ref) else { throw GitError(.notFound, "no reference \(ref) in \(displayURL)") }
      if ref.hasPrefix("refs/heads/") { return try named(ref, String(ref.dropFirst(11))) }
      if ref.hasPrefix("refs/tags/") { return try named(ref, String(ref.dropFirst(10))) }
      return try named(ref, ref)
    }
    if repo.referenceExists("refs/heads/" + ref) { return try named("refs/heads/" + ref, ref) }
    if repo.referenceExists("refs/tags/" + ref) { return try named("refs/tags/" + ref, ref) }
    let isHex = ref.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    if isHex && ref.utf8.count >= 4 && ref.utf8.count <= 40 {
      do throws(GitError) {
        let c = try repo.commit(prefix: ref)
        return Revision(name: nil, reference: nil, commit: c.id.hex)
      } catch {
        if error.libgit2Code == GIT_EAMBIGUOUS.rawValue {
          throw GitError(.invalidArgument, "commit id \(ref) is ambiguous in \(displayURL); give more digits")
        }
        throw GitError(.notFound, "no commit \(ref) in \(displayURL) (it must be reachable from a branch or tag)")
      }
    }
    throw GitError(.notFound, "no branch, tag or commit named '\(ref)' in \(displayURL)")
  }

  /// Whether the mirror holds `commit` and its tree (a revision it can still serve).
  public func contains(commit: String) -> Bool {
    guard let id = ObjectID(hex: commit) else { return false }
    return
      (try? withLock { () throws(GitError) -> Bool in
        let repo = try open()
        _ = try repo.commit(id).tree()
        return true
      }) ?? false
  }

  /// Whether `commit` equals or descends from `ancestor` (false when either is unknown).
  public func isDescendant(_ commit: String, of ancestor: String) throws(GitError) -> Bool {
    if commit == ancestor { return true }
    return try withLock { () throws(GitError) -> Bool in
      let repo = try open()
      guard let c = ObjectID(hex: commit), let a = ObjectID(hex: ancestor) else { return false }
      return repo.isDescendant(c, of: a)
    }
  }
}
