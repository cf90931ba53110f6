import EmpireModel
import Foundation
import Synchronization

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

    public init(url: String, ref: String? = nil, path: String = ".", stateDir: String, auth: GitAuth = .none,
                timeouts: GitTimeouts = GitTimeouts(), verify: SignatureVerification = .off,
                allowRewrite: Bool = false, maxBlobSize: Int = TreeReadOptions().maxBlobSize) {
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
/// All libgit2 work runs on one serial dispatch queue per source, never on Swift's
/// cooperative pool; the async methods suspend until it is done.
public final class GitSource: Sendable {
    public let config: GitSourceConfig
    public let mirror: GitMirror
    private let queue: DispatchQueue
    private let lastGood = Mutex<Revision?>(nil)

    public init(_ config: GitSourceConfig) throws(GitError) {
        self.config = config
        self.mirror = try GitMirror(url: config.url, stateDir: config.stateDir, auth: config.auth, timeouts: config.timeouts)
        self.queue = DispatchQueue(label: "ytempire.git.\(mirror.displayURL)")
    }

    public var lastGoodRevision: Revision? { lastGood.withLock { $0 } }

    /// Fetches and resolves the configured ref. `lastApplied` (from the state store) is the
    /// revision the rewrite check compares against.
    public func sync(lastApplied: Revision? = nil) async -> SyncResult {
        let deadline = config.timeouts.connect + config.timeouts.transfer + .seconds(1)
        let result = await Self.run(on: queue, timeout: deadline) { [self] () throws(GitError) -> SyncResult in
            syncBlocking(lastApplied: lastApplied)
        }
        switch result {
        case .success(let r): return r
        case .failure(let e):
            return SyncResult(revision: lastGood.withLock { $0 } ?? lastApplied, latest: nil, error: e, rewriteAccepted: false, recloned: false)
        }
    }

    /// `sync` for callers on their own thread (the CLI).
    public func syncBlocking(lastApplied: Revision? = nil) -> SyncResult {
        let previous = lastGood.withLock { $0 } ?? lastApplied
        var recloned = false
        func fallback(_ e: GitError, latest: Revision? = nil) -> SyncResult {
            // The last good revision stays in use only if the mirror can still serve it.
            var usable = previous
            if let p = previous, !mirror.contains(commit: p.commit) { usable = nil }
            return SyncResult(revision: usable, latest: latest, error: e, rewriteAccepted: false, recloned: recloned)
        }
        do throws(GitError) {
            recloned = try mirror.fetch().recloned
        } catch {
            return fallback(error)
        }
        var rev: Revision
        do throws(GitError) {
            rev = try mirror.resolve(config.ref)
        } catch where error.code == .corruptMirror {
            // Refs present but objects missing: clone again and retry once.
            do throws(GitError) {
                try mirror.withLock { () throws(GitError) in try mirror.discardCorrupt() }
                _ = try mirror.fetch()
                recloned = true
                rev = try mirror.resolve(config.ref)
            } catch {
                return fallback(error)
            }
        } catch {
            return fallback(error)
        }
        var rewriteAccepted = false
        if let p = previous, p.commit != rev.commit, rev.reference != nil {
            let descends = (try? mirror.isDescendant(rev.commit, of: p.commit)) ?? false
            if !descends {
                if config.allowRewrite {
                    rewriteAccepted = true
                } else {
                    let e = GitError(.historyRewritten, "\(rev.name ?? rev.commit) moved to \(rev.shortCommit), which does not descend from the last applied \(p.shortCommit) (force-push?); set allowRewrite: true to accept it")
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
        lastGood.withLock { $0 = rev }
        return SyncResult(revision: rev, latest: rev, error: nil, rewriteAccepted: rewriteAccepted, recloned: recloned)
    }

    /// The manifests at `revision`, under the configured path.
    public func manifests(at revision: Revision) async throws(GitError) -> ManifestTree {
        try await Self.run(on: queue, timeout: nil) { [self] () throws(GitError) -> ManifestTree in
            try manifestsBlocking(at: revision)
        }.get()
    }

    /// `manifests(at:)` for callers on their own thread. Objects that turn out unreadable
    /// (a damaged pack) mean a corrupt mirror: it is cloned again and the read retried once.
    public func manifestsBlocking(at revision: Revision) throws(GitError) -> ManifestTree {
        let options = TreeReadOptions(path: config.path, maxBlobSize: config.maxBlobSize)
        do throws(GitError) {
            return try mirror.readManifests(at: revision, options: options)
        } catch where error.code == .corruptMirror {
            try mirror.withLock { () throws(GitError) in try mirror.discardCorrupt() }
            _ = try mirror.fetch()
            return try mirror.readManifests(at: revision, options: options)
        }
    }

    /// Added, modified and deleted manifests between two revisions, for incremental reconciles.
    public func changes(from old: Revision, to new: Revision) async throws(GitError) -> ManifestChanges {
        let options = TreeReadOptions(path: config.path, maxBlobSize: config.maxBlobSize)
        return try await Self.run(on: queue, timeout: nil) { [mirror] () throws(GitError) -> ManifestChanges in
            try mirror.changes(from: old.commit, to: new.commit, options: options)
        }.get()
    }

    /// Commits status files on the status branch; pushes when `push` is set.
    public func writeStatus(_ files: [String: [UInt8]], branch: String = "ytempire/status", push: Bool) async throws(GitError) -> StatusCommitResult {
        try await Self.run(on: queue, timeout: config.timeouts.connect + config.timeouts.transfer + .seconds(1)) { [mirror] () throws(GitError) -> StatusCommitResult in
            try mirror.writeStatus(files, branch: branch, push: push)
        }.get()
    }

    /// Runs blocking work on `queue` and suspends until it finishes, or until `timeout`
    /// (the work then finishes in the background and its result is dropped).
    static func run<T: Sendable>(on queue: DispatchQueue, timeout: Duration?,
                                 _ body: @escaping @Sendable () throws(GitError) -> T) async -> Result<T, GitError> {
        let once = Mutex<CheckedContinuation<Result<T, GitError>, Never>?>(nil)
        return await withCheckedContinuation { (c: CheckedContinuation<Result<T, GitError>, Never>) in
            once.withLock { $0 = c }
            queue.async {
                let r: Result<T, GitError>
                do throws(GitError) { r = .success(try body()) } catch { r = .failure(error) }
                once.withLock { $0.take() }?.resume(returning: r)
            }
            if let timeout {
                let ns = timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
                DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(ns))) {
                    once.withLock { $0.take() }?.resume(returning: .failure(GitError(.timeout, "git operation did not finish within \(timeout)")))
                }
            }
        }
    }
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
