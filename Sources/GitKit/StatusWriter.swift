import Basics
internal import CGit2
import Foundation

/// The outcome of writing status files.
public struct StatusCommitResult: Sendable, Equatable {
  /// The status branch's commit after the write (nil only if nothing was ever written).
  public var commit: String?
  /// A new commit was made (the tree changed).
  public var committed: Bool
  /// The commit was pushed to the source.
  public var pushed: Bool
  /// Non-fast-forward rejections recovered from by re-fetching and committing on top.
  public var retries: Int
}

extension GitMirror {
  /// GitKit's own copy of the status branch; fetches never touch `refs/ytempire/`.
  static func localStatusRef(_ branch: String) -> String { "refs/ytempire/status/" + branch }

  /// Commits `files` (paths below `status/`, e.g. `channel/tech-daily.yaml`) as the whole
  /// content of `status/` on the orphan branch `branch`, parented on the previous status
  /// commit, only when the tree changed. With `push`, pushes the branch to the source and,
  /// when the remote moved (non-fast-forward), re-fetches and commits on top (up to 3
  /// times). Only `refs/heads/<branch>` is ever pushed; no other branch is touched.
  public func writeStatus(
    _ files: [String: [UInt8]], branch: String = "ytempire/status", push: Bool,
    message: String = "ytempire: update status"
  ) throws(GitError) -> StatusCommitResult {
    try Self.validate(branch: branch)
    for p in files.keys { try Self.validate(statusPath: p) }
    return try withLock { () throws(GitError) -> StatusCommitResult in
      let (repo, _) = try openOrCreate()
      let local = Self.localStatusRef(branch)
      let mirrored = "refs/heads/" + branch
      var retries = 0
      while true {
        let parentRef: String? =
          push
          ? (repo.referenceExists(mirrored) ? mirrored : repo.referenceExists(local) ? local : nil)
          : (repo.referenceExists(local) ? local : repo.referenceExists(mirrored) ? mirrored : nil)
        let parent: Commit? = try parentRef.map { (r) throws(GitError) -> Commit in try repo.commit(repo.peelToCommit(reference: r).0) }
        let tree = try Self.buildTree(repo, files: files)
        if let parent, parent.treeID == tree {
          try repo.setReference(local, to: parent.id, message: "ytempire: status unchanged")
          // Unchanged, but an earlier push may not have landed: push what is there.
          let pushedAlready = repo.referenceExists(mirrored) && (try? repo.peelToCommit(reference: mirrored).0) == parent.id
          if push && !pushedAlready {
            do throws(GitError) {
              try pushRef(repo, local: local, remote: mirrored)
              try repo.setReference(mirrored, to: parent.id, message: "ytempire: pushed status")
              return StatusCommitResult(commit: parent.id.hex, committed: false, pushed: true, retries: retries)
            } catch  where error.code == .nonFastForward && retries < 3 {
              retries += 1
              try location.probe(timeout: timeouts.connect)
              _ = try fetchLocked(into: repo)
              continue
            }
          }
          return StatusCommitResult(commit: parent.id.hex, committed: false, pushed: false, retries: retries)
        }
        let commit = try Self.commit(repo, tree: tree, parent: parent, message: message)
        try repo.setReference(local, to: commit, message: "ytempire: status")
        guard push else {
          return StatusCommitResult(commit: commit.hex, committed: true, pushed: false, retries: retries)
        }
        do throws(GitError) {
          try pushRef(repo, local: local, remote: mirrored)
          try repo.setReference(mirrored, to: commit, message: "ytempire: pushed status")
          return StatusCommitResult(commit: commit.hex, committed: true, pushed: true, retries: retries)
        } catch  where error.code == .nonFastForward && retries < 3 {
          retries += 1
          try location.probe(timeout: timeouts.connect)
          _ = try fetchLocked(into: repo)
        }
      }
    }
  }

  static func validate(branch: String) throws(GitError) {
    var valid: Int32 = 0
    guard git_reference_name_is_valid(&valid, "refs/heads/" + branch) == 0, valid == 1 else {
      throw GitError(.invalidArgument, "invalid status branch name '\(branch)'")
    }
  }

  static func validate(statusPath p: String) throws(GitError) {
    let comps = p.split(separator: "/", omittingEmptySubsequences: false)
    guard !p.isEmpty, !p.hasPrefix("/"), comps.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." && $0 != ".git" }) else {
      throw GitError(.invalidArgument, "invalid status file path '\(p)'")
    }
  }

  /// The tree `{status/: files}`.
  static func buildTree(_ repo: Repository, files: [String: [UInt8]]) throws(GitError) -> ObjectID {
    final class Node {
      var blobs: [String: git_oid] = [:]
      var dirs: [String: Node] = [:]
    }
    let root = Node()
    let status = Node()
    root.dirs["status"] = status
    for (path, bytes) in files {
      let comps = path.split(separator: "/").map(String.init)
      var node = status
      for c in comps.dropLast() {
        if let n = node.dirs[c] {
          node = n
        } else {
          let n = Node()
          node.dirs[c] = n
          node = n
        }
      }
      var oid = git_oid()
      let rc = bytes.withUnsafeBytes { git_blob_create_from_buffer(&oid, repo.pointer, $0.baseAddress, $0.count) }
      try LibGit2.check(rc, "cannot write status blob \(path)")
      node.blobs[comps.last!] = oid
    }
    func write(_ n: Node) throws(GitError) -> git_oid {
      var bld: OpaquePointer?
      try LibGit2.check(git_treebuilder_new(&bld, repo.pointer, nil), "cannot build status tree")
      defer { git_treebuilder_free(bld) }
      for (name, var oid) in n.blobs {
        try LibGit2.check(git_treebuilder_insert(nil, bld, name, &oid, GIT_FILEMODE_BLOB), "cannot add \(name)")
      }
      for (name, child) in n.dirs {
        var oid = try write(child)
        try LibGit2.check(git_treebuilder_insert(nil, bld, name, &oid, GIT_FILEMODE_TREE), "cannot add \(name)/")
      }
      var out = git_oid()
      try LibGit2.check(git_treebuilder_write(&out, bld), "cannot write status tree")
      return out
    }
    return ObjectID(try write(root))
  }

  static func commit(_ repo: Repository, tree: ObjectID, parent: Commit?, message: String) throws(GitError) -> ObjectID {
    var sig: UnsafeMutablePointer<git_signature>?
    try LibGit2.check(git_signature_now(&sig, "ytempire", "ytempire@localhost"), "cannot make a signature")
    defer { git_signature_free(sig) }
    let t = try repo.tree(tree)
    var out = git_oid()
    var parents: [OpaquePointer?] = parent.map { [$0.pointer] } ?? []
    let rc = parents.withUnsafeMutableBufferPointer { buf in
      git_commit_create(&out, repo.pointer, nil, sig, sig, "UTF-8", message, t.pointer, buf.count, buf.baseAddress)
    }
    try LibGit2.check(rc, "cannot create the status commit")
    return ObjectID(out)
  }

  /// Pushes `local` to `remote` on the source, never forced.
  func pushRef(_ repo: Repository, local: String, remote: String) throws(GitError) {
    if location.scheme == .local || location.scheme == .file, let worktree = Self.nonBareRepository(location.libgit2URL) {
      return try publishIntoWorkingRepository(worktree, from: repo, local: local, remote: remote)
    }
    try location.probe(timeout: timeouts.connect)
    try TLSTrust.during(location, caFile: caFile) { () throws(GitError) in try pushTrusted(repo, local: local, remote: remote) }
  }

  private func pushTrusted(_ repo: Repository, local: String, remote: String) throws(GitError) {
    let ctx = CallbackContext(auth: auth, url: location, timeouts: timeouts, caFile: caFile)
    var r: OpaquePointer?
    try LibGit2.check(
      git_remote_create_anonymous(&r, repo.pointer, location.libgit2URL), "invalid remote \(displayURL)", secrets: auth.secrets)
    defer { git_remote_free(r) }
    var opts = git_push_options()
    git_push_options_init(&opts, UInt32(GIT_PUSH_OPTIONS_VERSION))
    opts.callbacks = ctx.callbacks()
    let rc = try withStrarray(["\(local):\(remote)"]) { (specs) throws(GitError) -> Int32 in
      git_remote_push(r, specs, &opts)
    }
    if rc != 0 {
      var e = ctx.error(rc, "cannot push \(remote) to \(displayURL)")
      let m = e.message.lowercased()
      if rc == GIT_ENONFASTFORWARD.rawValue || m.contains("non-fast") || m.contains("not present locally") || m.contains("fetch first") {
        e.code = .nonFastForward
      }
      throw e
    }
    if let (ref, why) = ctx.pushRejections.first {
      let lower = why.lowercased()
      let code: GitError.Code =
        lower.contains("fast-forward") || lower.contains("fetch first") || lower.contains("stale") ? .nonFastForward : .pushRejected
      throw GitError(code, Redaction.scrub("\(displayURL) rejected the push of \(ref): \(why)", secrets: auth.secrets, urls: true))
    }
  }
}

extension GitMirror {
  /// The path of a local repository with a work tree (`.git` inside), or nil.
  static func nonBareRepository(_ url: String) -> String? {
    var path = url
    if path.hasPrefix("file://") { path = String(path.dropFirst(7)) }
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path + "/.git", isDirectory: &isDir) else { return nil }
    return path
  }

  /// libgit2 cannot push into a repository with a work tree, so the status branch is
  /// brought into a local source repository from its side: opened directly, it fetches the
  /// status commit from the mirror. Only `remote` (refs/heads/<status branch>) is written, and
  /// only as a fast-forward, as a push would be; the work tree and its index are not touched.
  func publishIntoWorkingRepository(_ path: String, from mirrorRepo: Repository, local: String, remote: String) throws(GitError) {
    var target: OpaquePointer?
    try LibGit2.check(
      git_repository_open_ext(&target, path, UInt32(GIT_REPOSITORY_OPEN_NO_SEARCH.rawValue), nil), "cannot open \(displayURL)")
    defer { git_repository_free(target) }
    let (newCommit, _) = try mirrorRepo.peelToCommit(reference: local)
    var current = git_oid()
    if git_reference_name_to_id(&current, target, remote) == 0 {
      var new = newCommit.oid
      if git_oid_equal(&current, &new) != 0 { return }
      // Fast-forward only: the commit there must be an ancestor of ours (it is in the
      // mirror once fetched; if it is not, the caller re-fetches and commits on top).
      var ahead = 0
      var behind = 0
      if git_graph_ahead_behind(&ahead, &behind, mirrorRepo.pointer, &new, &current) != 0 || behind > 0 {
        throw GitError(.nonFastForward, "\(displayURL) has a newer \(remote); fetch first")
      }
    }
    var r: OpaquePointer?
    try LibGit2.check(git_remote_create_anonymous(&r, target, mirrorRepo.path), "cannot read the mirror of \(displayURL)")
    defer { git_remote_free(r) }
    var opts = git_fetch_options()
    git_fetch_options_init(&opts, UInt32(GIT_FETCH_OPTIONS_VERSION))
    opts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE
    let rc = try withStrarray(["+\(local):\(remote)"]) { (specs) throws(GitError) -> Int32 in
      git_remote_fetch(r, specs, &opts, "ytempire: status")
    }
    if rc != 0 { throw LibGit2.error(rc, "cannot write \(remote) into \(displayURL)") }
  }
}
