import EmpireModel
import Foundation
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// Configuration of a git source (A5 `source:`), with secrets already resolved.
public struct GitSourceConfig: Sendable {
  public var url: String
  /// Branch, tag, commit id (full or abbreviated) or `refs/…`; nil for the remote's HEAD.
  public var ref: String?
  public var path: String
  public var stateDir: String
  public var auth: GitAuth
  public var timeouts: GitTimeouts
  public var verify: SignatureVerification
  /// Accept a tracked ref that moved to a commit not descending from the last applied one.
  public var allowRewrite: Bool
  public var maxBlobSize: Int
  /// PEM bundle an https remote's certificate must chain to; nil for libgit2's default
  /// (the system bundle). See ``GitSourceConfig/caFile(configured:environment:)``.
  public var caFile: String?

  public init(
    url: String, ref: String? = nil, path: String = ".", stateDir: String, auth: GitAuth = .none,
    timeouts: GitTimeouts = GitTimeouts(), verify: SignatureVerification = .off,
    allowRewrite: Bool = false, maxBlobSize: Int = TreeReadOptions().maxBlobSize, caFile: String? = nil
  ) {
    self.caFile = caFile
    self.url = url
    self.ref = ref
    self.path = path
    self.stateDir = stateDir
    self.auth = auth
    self.timeouts = timeouts
    self.verify = verify
    self.allowRewrite = allowRewrite
    self.maxBlobSize = maxBlobSize
  }
}

extension GitSourceConfig {
  /// The CA bundle to trust: the configured one, else `GIT_SSL_CAINFO` (as git), else
  /// `SSL_CERT_FILE` (as OpenSSL), else nil (the system bundle). Debian's libgit2 uses
  /// mbedTLS, which reads neither variable itself.
  public static func caFile(configured: String?, environment: [String: String]) -> String? {
    if let c = configured, !c.isEmpty { return c }
    for name in ["GIT_SSL_CAINFO", "SSL_CERT_FILE"] {
      if let v = environment[name], !v.isEmpty { return v }
    }
    return nil
  }
}

/// The result of one poll of the source.
public struct SyncResult: Sendable {
  /// The revision to reconcile: the newest acceptable one, or the last good one when the
  /// newest could not be fetched or was refused (nil when there has never been one).
  public var revision: Revision?
  /// What the ref resolves to now, when it could be fetched (even if refused).
  public var latest: Revision?
  /// Why the newest revision is not in use (unreachable, authentication, rewrite, signature…).
  public var error: GitError?
  /// The history was rewritten and accepted because `allowRewrite` is set.
  public var rewriteAccepted: Bool
  /// The mirror was corrupt and has been cloned again.
  public var recloned: Bool
}

/// A git repository as the reconciler's source: fetches into the mirror, resolves the
/// configured ref, refuses history rewrites and unverified commits, keeps the last good
/// revision, reads manifests and diffs, and writes status commits.
///
/// All libgit2 work runs on a serial dispatch queue of the source, never on Swift's
/// cooperative pool; the async methods suspend until it is done.
///
/// A call that outlives its deadline (a server that accepts the connection and then stays
/// silent leaves libgit2 blocked in `recv`, where no progress callback runs) is abandoned
/// and interrupted: its worker thread is signalled until the blocking system call fails
/// with `EINTR` and libgit2 gives up, releasing the mirror's lock. Later calls do not wait
/// behind it either: the source moves on to a fresh queue, and the mirror's advisory lock
/// (`flock`) still serialises access to the mirror on disk. An abandoned sync never updates
/// the last good revision.
public final class GitSource: Sendable {
  public let config: GitSourceConfig
  public let mirror: GitMirror
  /// The queue new calls run on; replaced when a call on it times out.
  private let queue: Mutex<DispatchQueue>
  private let lastGood = Mutex<Revision?>(nil)

  public init(_ config: GitSourceConfig) throws(GitError) {
    self.config = config
    self.mirror = try GitMirror(
      url: config.url, stateDir: config.stateDir, auth: config.auth, timeouts: config.timeouts,
      caFile: config.caFile)
    self.queue = Mutex(Self.makeQueue(mirror))
  }

  private static func makeQueue(_ mirror: GitMirror) -> DispatchQueue {
    DispatchQueue(label: "ytempire.git.\(mirror.displayURL)")
  }

  public var lastGoodRevision: Revision? { lastGood.withLock { $0 } }

  /// Runs `body` on the source's current queue with a deadline; on timeout, later calls
  /// get a fresh queue instead of queueing behind the abandoned one.
  private func perform<T: Sendable>(
    timeout: Duration?,
    _ body: @escaping @Sendable (BlockingOperation) throws(GitError) -> T
  ) async -> Result<T, GitError> {
    let current = queue.withLock { $0 }
    return await Self.run(
      on: current, timeout: timeout,
      onTimeout: { [self] in
        queue.withLock { if $0 === current { $0 = Self.makeQueue(mirror) } }
      }, body)
  }

  /// Fetches and resolves the configured ref. `lastApplied` (from the state store) is the
  /// revision the rewrite check compares against; `lastGood` (also from the state store: a
  /// process that did not sync yet has none in memory) is what a failed sync falls back to.
  public func sync(lastApplied: Revision? = nil, lastGood stored: Revision? = nil) async -> SyncResult {
    let result = await perform(timeout: networkDeadline) { [self] (op) throws(GitError) -> SyncResult in
      syncBlocking(lastApplied: lastApplied, stored: stored, abandoned: { op.isCancelled })
    }
    return outcome(result, fallback: fallbackRevision(lastApplied: lastApplied, stored: stored))
  }

  /// What a failed sync answers with: the last good revision of this process, else the stored
  /// one, else the last applied one — only while the mirror still holds its commit.
  private func fallbackRevision(lastApplied: Revision?, stored: Revision?) -> Revision? {
    guard let r = lastGood.withLock({ $0 }) ?? stored ?? lastApplied else { return nil }
    return mirror.contains(commit: r.commit) ? r : nil
  }

  /// A sync that failed as a whole (timed out, abandoned) keeps the last good revision.
  private func outcome(_ result: Result<SyncResult, GitError>, fallback: Revision?) -> SyncResult {
    switch result {
    case .success(let r): return r
    case .failure(let e):
      return SyncResult(revision: fallback, latest: nil, error: e, rewriteAccepted: false, recloned: false)
    }
  }

  /// The deadline of a call that talks to the remote: connect + transfer + 1 s.
  public var networkDeadline: Duration { config.timeouts.connect + config.timeouts.transfer + .seconds(1) }

  /// `sync` for callers on their own thread (the CLI), with the same deadline: the work
  /// runs on the calling thread and is interrupted there when the deadline passes.
  public func syncBlocking(lastApplied: Revision? = nil, lastGood stored: Revision? = nil) -> SyncResult {
    let result = Self.runBlocking(timeout: networkDeadline) { [self] (op) throws(GitError) -> SyncResult in
      syncBlocking(lastApplied: lastApplied, stored: stored, abandoned: { op.isCancelled })
    }
    return outcome(result, fallback: fallbackRevision(lastApplied: lastApplied, stored: stored))
  }

  /// `abandoned` is true once the caller stopped waiting: the result is then dropped and
  /// must not replace the last good revision (a newer sync may have set it meanwhile).
  private func syncBlocking(lastApplied: Revision?, stored: Revision?, abandoned: () -> Bool) -> SyncResult {
    // The rewrite check compares with what was applied; without that, with what this process used last.
    let base = lastApplied ?? lastGood.withLock { $0 }
    var recloned = false
    func fallback(_ e: GitError, latest: Revision? = nil) -> SyncResult {
      // The last good revision stays in use only if the mirror can still serve it.
      SyncResult(
        revision: fallbackRevision(lastApplied: lastApplied, stored: stored), latest: latest, error: e,
        rewriteAccepted: false, recloned: recloned)
    }
    do throws(GitError) {
      recloned = try mirror.fetch(also: extraRefs).recloned
    } catch {
      return fallback(error)
    }
    var rev: Revision
    do throws(GitError) {
      rev = try mirror.resolve(config.ref)
    } catch  where error.code == .corruptMirror {
      // Refs present but objects missing: clone again and retry once.
      do throws(GitError) {
        try mirror.withLock { () throws(GitError) in try mirror.discardCorrupt() }
        _ = try mirror.fetch(also: extraRefs)
        recloned = true
        rev = try mirror.resolve(config.ref)
      } catch {
        return fallback(error)
      }
    } catch {
      return fallback(error)
    }
    var rewriteAccepted = false
    if let p = base, p.commit != rev.commit, rev.reference != nil {
      let descends = (try? mirror.isDescendant(rev.commit, of: p.commit)) ?? false
      if !descends {
        if config.allowRewrite {
          rewriteAccepted = true
        } else {
          let e = GitError(
            .historyRewritten,
            "\(rev.name ?? rev.commit) moved to \(rev.shortCommit), which does not descend from the last applied \(p.shortCommit) (force-push?); set allowRewrite: true to accept it"
          )
          return fallback(e, latest: rev)
        }
      }
    }
    // A commit verified in an earlier sync need not be verified again.
    let alreadyVerified = lastGood.withLock { $0?.commit == rev.commit }
    if config.verify.mode != .off && !alreadyVerified {
      do throws(GitError) {
        try mirror.verifySignature(commit: rev.commit, policy: config.verify)
      } catch {
        return fallback(error, latest: rev)
      }
    }
    if abandoned() {
      return SyncResult(
        revision: fallbackRevision(lastApplied: lastApplied, stored: stored), latest: rev,
        error: GitError(.timeout, "sync abandoned at its deadline"),
        rewriteAccepted: false, recloned: recloned)
    }
    lastGood.withLock { $0 = rev }
    return SyncResult(revision: rev, latest: rev, error: nil, rewriteAccepted: rewriteAccepted, recloned: recloned)
  }

  /// The manifests at `revision`, under the configured path.
  public func manifests(at revision: Revision) async throws(GitError) -> ManifestTree {
    try await perform(timeout: nil) { [self] (_) throws(GitError) -> ManifestTree in
      try manifestsBlocking(at: revision)
    }.get()
  }

  /// `manifests(at:)` for callers on their own thread. Objects that turn out unreadable
  /// (a damaged pack) mean a corrupt mirror: it is cloned again and the read retried once.
  public func manifestsBlocking(at revision: Revision) throws(GitError) -> ManifestTree {
    let options = TreeReadOptions(path: config.path, maxBlobSize: config.maxBlobSize)
    do throws(GitError) {
      return try mirror.readManifests(at: revision, options: options)
    } catch  where error.code == .corruptMirror {
      try mirror.withLock { () throws(GitError) in try mirror.discardCorrupt() }
      _ = try mirror.fetch(also: extraRefs)
      return try mirror.readManifests(at: revision, options: options)
    }
  }

  /// Added, modified and deleted manifests between two revisions, for incremental reconciles.
  public func changes(from old: Revision, to new: Revision) async throws(GitError) -> ManifestChanges {
    let options = TreeReadOptions(path: config.path, maxBlobSize: config.maxBlobSize)
    return try await perform(timeout: nil) { [mirror] (_) throws(GitError) -> ManifestChanges in
      try mirror.changes(from: old.commit, to: new.commit, options: options)
    }.get()
  }

  /// Commits status files on the status branch; pushes when `push` is set.
  public func writeStatus(_ files: [String: [UInt8]], branch: String = "ytempire/status", push: Bool) async throws(GitError)
    -> StatusCommitResult
  {
    try await perform(timeout: networkDeadline) { [mirror] (_) throws(GitError) -> StatusCommitResult in
      try mirror.writeStatus(files, branch: branch, push: push)
    }.get()
  }

  /// Runs blocking work on the calling thread; when `timeout` passes first the work is
  /// interrupted (see ``BlockingOperation``) and the result is `.timeout`, whatever the
  /// interrupted work returned.
  static func runBlocking<T>(
    timeout: Duration,
    _ body: (BlockingOperation) throws(GitError) -> T
  ) -> Result<T, GitError> {
    let op = BlockingOperation()
    after(timeout) { op.cancel() }
    let r = op.run(body)
    if op.isCancelled { return .failure(GitError(.timeout, "git operation did not finish within \(timeout)")) }
    return r
  }

  /// Runs `work` on a global queue once `delay` has passed.
  static func after(_ delay: Duration, _ work: @escaping @Sendable () -> Void) {
    let ns = delay.components.seconds * 1_000_000_000 + delay.components.attoseconds / 1_000_000_000
    DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(clamping: ns)), execute: work)
  }

  /// Runs blocking work on `queue` and suspends until it finishes, or until `timeout`.
  /// At the timeout the caller gets `.timeout` at once, `onTimeout` runs, and the work is
  /// abandoned: it is skipped if it has not started, and otherwise interrupted (see
  /// ``BlockingOperation``) until it returns; its result is dropped.
  static func run<T: Sendable>(
    on queue: DispatchQueue, timeout: Duration?,
    onTimeout: (@Sendable () -> Void)? = nil,
    _ body: @escaping @Sendable (BlockingOperation) throws(GitError) -> T
  ) async -> Result<T, GitError> {
    let once = Mutex<CheckedContinuation<Result<T, GitError>, Never>?>(nil)
    let op = BlockingOperation()
    return await withCheckedContinuation { (c: CheckedContinuation<Result<T, GitError>, Never>) in
      once.withLock { $0 = c }
      queue.async {
        let r = op.run(body)
        once.withLock { $0.take() }?.resume(returning: r)
      }
      if let timeout {
        after(timeout) {
          guard let c = once.withLock({ $0.take() }) else { return }
          op.cancel()
          onTimeout?()
          c.resume(returning: .failure(GitError(.timeout, "git operation did not finish within \(timeout)")))
        }
      }
    }
  }
}

/// One piece of blocking work on a source's queue, which can be abandoned.
///
/// libgit2 1.5 has no I/O timeouts, and a silent server leaves it blocked in `recv` (or
/// `connect`, `poll`), where no callback runs. Once cancelled, the thread running the work
/// is sent `SIGURG` every 50 ms (then every second) until the work returns: the signal has a
/// no-op handler installed without `SA_RESTART`, so the blocking call fails with `EINTR`,
/// which libgit2 reports as a network error and unwinds (releasing the mirror's lock).
/// The signal is unblocked only on that thread and only while the work runs (dispatch's
/// worker threads block it otherwise), and is sent only while the work runs. `SIGURG` is
/// ignored by default and otherwise only raised for out-of-band socket data, which nothing
/// here uses.
final class BlockingOperation: Sendable {
  private struct State {
    #if canImport(Glibc)
      var thread: pthread_t?
      var savedMask = sigset_t()
    #endif
    var running = false
    var cancelled = false
  }
  private let state = Mutex(State())

  /// True once the caller stopped waiting.
  var isCancelled: Bool { state.withLock { $0.cancelled } }

  /// On the worker thread, before the work: false if it was abandoned before it started.
  func begin() -> Bool {
    #if canImport(Glibc)
      _ = Self.handlerInstalled
      var set = sigset_t()
      sigemptyset(&set)
      sigaddset(&set, SIGURG)
      var saved = sigset_t()
      return state.withLock { s in
        if s.cancelled { return false }
        pthread_sigmask(SIG_UNBLOCK, &set, &saved)
        s.savedMask = saved
        s.thread = pthread_self()
        s.running = true
        return true
      }
    #else
      return state.withLock { s in
        if s.cancelled { return false }
        s.running = true
        return true
      }
    #endif
  }

  /// On the worker thread, after the work. No signal is sent after this; one already
  /// pending stays blocked (and is consumed harmlessly when the signal is next unblocked).
  func end() {
    #if canImport(Glibc)
      var saved = state.withLock { s in
        s.running = false
        s.thread = nil
        return s.savedMask
      }
      pthread_sigmask(SIG_SETMASK, &saved, nil)
    #else
      state.withLock { $0.running = false }
    #endif
  }

  /// Runs `body` between `begin` and `end` on this thread; abandoned before it started, it
  /// does not run.
  func run<T>(_ body: (BlockingOperation) throws(GitError) -> T) -> Result<T, GitError> {
    guard begin() else { return .failure(GitError(.timeout, "git operation abandoned before it started")) }
    defer { end() }
    do throws(GitError) { return .success(try body(self)) } catch { return .failure(error) }
  }

  /// Abandons the work: skipped if not started, interrupted until it returns otherwise.
  func cancel() {
    let first = state.withLock { s in
      defer { s.cancelled = true }
      return !s.cancelled
    }
    if first { interrupt(attempt: 0) }
  }

  private func interrupt(attempt: Int) {
    let again = state.withLock { s -> Bool in
      guard s.running else { return false }
      #if canImport(Glibc)
        if let t = s.thread {
          pthread_kill(t, SIGURG)
        }
        return true
      #else
        return false
      #endif
    }
    guard again else { return }
    let delay: DispatchTimeInterval = attempt < 40 ? .milliseconds(50) : .seconds(1)
    DispatchQueue.global().asyncAfter(deadline: .now() + delay) { [self] in interrupt(attempt: attempt + 1) }
  }

  #if canImport(Glibc)
    /// Installs the no-op `SIGURG` handler (without `SA_RESTART`) once, unless the process
    /// already handles `SIGURG` itself (its handler then decides).
    private static let handlerInstalled: Bool = {
      var current = sigaction()
      guard sigaction(SIGURG, nil, &current) == 0 else { return false }
      let existing = current.__sigaction_handler.sa_handler
      let isDefault =
        existing == nil || unsafeBitCast(existing, to: Int.self) == 0
        || unsafeBitCast(existing, to: Int.self) == 1  // SIG_DFL / SIG_IGN
      guard isDefault else { return true }
      var action = sigaction()
      action.__sigaction_handler.sa_handler = { _ in }
      sigemptyset(&action.sa_mask)
      action.sa_flags = 0
      return sigaction(SIGURG, &action, nil) == 0
    }()
  #endif
}

extension GitMirror {
  /// Reads the manifests of a commit (see ``TreeReader``).
  public func readManifests(at revision: Revision, options: TreeReadOptions = TreeReadOptions()) throws(GitError) -> ManifestTree {
    let repo = try open()
    return try TreeReader.read(repo, revision: revision, options: options)
  }

  /// Manifest changes between two commits under `options.path`.
  public func changes(from old: String, to new: String, options: TreeReadOptions = TreeReadOptions()) throws(GitError) -> ManifestChanges {
    let repo = try open()
    return try TreeReader.diff(repo, from: old, to: new, options: options)
  }
}

extension GitSource {
  /// A ref outside branches and tags (a pull request's `refs/pull/7/head`, a merge request's
  /// `refs/merge-requests/7/head`) is fetched by name: the mirror's refspecs do not cover it.
  var extraRefs: [String] {
    guard let r = config.ref, r.hasPrefix("refs/"), !r.hasPrefix("refs/heads/"), !r.hasPrefix("refs/tags/") else { return [] }
    return [r]
  }
}
