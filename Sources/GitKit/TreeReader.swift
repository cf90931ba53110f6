internal import CGit2
import EmpireModel
import Foundation
import YAMLKit

/// What to read from a commit.
public struct TreeReadOptions: Sendable {
  /// Folder of the repository holding the manifests ("." or "" for the root).
  public var path: String
  /// Blobs larger than this are not read (a `file-too-large` error instead).
  public var maxBlobSize: Int
  public var maxFiles: Int

  public init(path: String = ".", maxBlobSize: Int = YAMLLimits.default.maxFileBytes, maxFiles: Int = 200_000) {
    self.path = path
    self.maxBlobSize = maxBlobSize
    self.maxFiles = maxFiles
  }

  /// The path normalised to "" (root) or "a/b" with no leading or trailing '/'.
  var normalizedPath: String {
    let parts = path.split(separator: "/").filter { $0 != "." && !$0.isEmpty }
    return parts.joined(separator: "/")
  }
}

/// The manifests of one commit, ready for `ManifestLoader.validate`.
public struct ManifestTree: Sendable {
  public var revision: Revision
  /// Displayed relative to the repository root; `relativePath` is relative to the manifest folder.
  public var sources: [ManifestSource]
  /// Warnings (symlinks, submodules) and errors (oversized blobs, too many files).
  public var diagnostics: [Diagnostic]
  /// Every regular, non-ignored file under the manifest folder, relative to it.
  public var files: Set<String>
  /// The blob ids of the non-manifest files among `files` (workflow JSON, worker scripts), and
  /// the mirror they are in, so that validation and the drivers read the ones a manifest references.
  var blobs: [String: String] = [:]
  var repositoryPath: String?

  /// Largest referenced file read (workflow JSON, worker scripts).
  public static let maxReferencedFile = 16 << 20

  /// The bytes of a non-manifest file of the commit (relative to the manifest folder), read
  /// from the mirror; nil when there is no such regular file or it is over 16 MiB.
  public func readFile(_ rel: String) -> [UInt8]? {
    guard let mirror = repositoryPath, let hex = blobs[rel], let id = ObjectID(hex: hex),
      let repo = try? Repository.openBare(mirror), let odb = try? repo.odb()
    else { return nil }
    var oid = id.oid
    if let (size, _) = odb.header(&oid), size > Self.maxReferencedFile { return nil }
    return try? odb.read(&oid)
  }
}

/// Added, modified and deleted manifests between two commits, as repository-relative paths.
public struct ManifestChanges: Sendable, Equatable {
  public var added: [String] = []
  public var modified: [String] = []
  public var deleted: [String] = []
  /// A `.ytempireignore` under the manifest folder changed: the set of manifests may have
  /// changed without any manifest changing, so the caller must read the whole tree.
  public var ignoreRulesChanged = false
  /// Non-manifest files under the folder changed (they may be referenced by manifests).
  public var otherFilesChanged: [String] = []

  public var isEmpty: Bool { added.isEmpty && modified.isEmpty && deleted.isEmpty && !ignoreRulesChanged && otherFilesChanged.isEmpty }
}

enum TreeReader {
  static let modeTree = GIT_FILEMODE_TREE.rawValue
  static let modeBlob = GIT_FILEMODE_BLOB.rawValue
  static let modeExec = GIT_FILEMODE_BLOB_EXECUTABLE.rawValue
  static let modeLink = GIT_FILEMODE_LINK.rawValue
  static let modeCommit = GIT_FILEMODE_COMMIT.rawValue

  static func isManifestName(_ name: String) -> Bool {
    (name.hasSuffix(".yaml") || name.hasSuffix(".yml")) && !name.hasPrefix(".")
  }

  static func mark(_ file: String) -> SourceMark { SourceMark(file: file, line: 1, column: 1) }

  /// Reads every manifest of `commit` under `options.path`, honouring `.ytempireignore`
  /// files at every level, without a work tree.
  static func read(_ repo: Repository, revision: Revision, options: TreeReadOptions) throws(GitError) -> ManifestTree {
    guard let id = ObjectID(hex: revision.commit) else { throw GitError(.invalidArgument, "bad commit id \(revision.commit)") }
    let commit = try repo.commit(id)
    let root = try commit.tree()
    let base = options.normalizedPath
    let odb = try repo.odb()
    var sources: [ManifestSource] = []
    var diags: [Diagnostic] = []
    var files = Set<String>()
    guard let top = base.isEmpty ? root : try root.subtree(repo, path: base) else {
      diags.append(Diagnostic(.error, .fileUnreadable, "no folder '\(base)' in \(revision)", at: mark(base)))
      return ManifestTree(revision: revision, sources: [], diagnostics: diags, files: [])
    }
    let displayPrefix = base.isEmpty ? "" : base + "/"
    var rules = IgnoreRules()
    var count = 0
    var pending: [Pending] = []
    var blobs: [String: String] = [:]

    // Depth-limited: a commit of 5,000 nested directories is one located error, not a stack overflow.
    func walk(_ tree: Tree, _ rel: String, depth: Int) throws(GitError) {
      let dirPrefix = rel.isEmpty ? "" : rel + "/"
      if let ig = tree.entry(named: DirectorySource.ignoreFileName), ig.mode.rawValue == modeBlob || ig.mode.rawValue == modeExec {
        let bytes = try odb.read(ig.id)
        rules.append(parsing: String(decoding: bytes, as: UTF8.self), base: dirPrefix)
      }
      for i in 0..<tree.count {
        let e = tree.entry(i)
        let childRel = dirPrefix + e.name
        let display = displayPrefix + childRel
        switch e.mode.rawValue {
        case modeTree:
          // Hidden directories (.github, …) are skipped, as the directory walk skips them.
          if DirectorySource.isHiddenDirectory(e.name) || rules.isIgnored(childRel, isDirectory: true) { continue }
          if depth + 1 > DirectorySource.maxDepth {
            diags.append(
              Diagnostic(
                .error, .depthLimit, "directories nested more than \(DirectorySource.maxDepth) levels deep are not read", at: mark(display))
            )
            continue
          }
          var t: OpaquePointer?
          try LibGit2.check(git_tree_lookup(&t, repo.pointer, e.id), "cannot read tree \(display)")
          try walk(Tree(t!), childRel, depth: depth + 1)
        case modeLink:
          if isManifestName(e.name) && !rules.isIgnored(childRel, isDirectory: false) {
            diags.append(Diagnostic(.warning, .symlinkSkipped, "symbolic link skipped; manifests must be regular files", at: mark(display)))
          }
        case modeCommit:
          if !rules.isIgnored(childRel, isDirectory: true) {
            diags.append(
              Diagnostic(.warning, .submoduleSkipped, "submodule skipped; manifests in submodules are not read", at: mark(display)))
          }
        case modeBlob, modeExec:
          if rules.isIgnored(childRel, isDirectory: false) { continue }
          files.insert(childRel)
          guard isManifestName(e.name) else {
            blobs[childRel] = ObjectID(e.id).hex
            continue
          }
          count += 1
          if count > options.maxFiles {
            if count == options.maxFiles + 1 {
              diags.append(
                Diagnostic(.error, .tooManyFiles, "more than \(options.maxFiles) manifest files; the rest are not read", at: mark(display)))
            }
            continue
          }
          pending.append(Pending(display: display, rel: childRel, oid: e.id.pointee))
        default:
          continue
        }
      }
    }
    do throws(GitError) {
      try walk(top, "", depth: 0)
      let (read, tooLarge) = try readBlobs(pending, repo: repo, odb: odb, maxBlobSize: options.maxBlobSize)
      sources = read
      diags.append(contentsOf: tooLarge)
    } catch {
      throw GitError(.corruptMirror, "cannot read \(revision): \(error.message)")
    }
    return ManifestTree(revision: revision, sources: sources, diagnostics: diags, files: files, blobs: blobs, repositoryPath: repo.path)
  }

  static func readRange(_ pending: [Pending], _ range: Range<Int>, _ odb: ODB, _ maxBlobSize: Int) throws(GitError) -> [(
    Int, ManifestSource?, Diagnostic?
  )] {
    var out: [(Int, ManifestSource?, Diagnostic?)] = []
    out.reserveCapacity(range.count)
    for i in range {
      var oid = pending[i].oid
      if let (size, _) = odb.header(&oid), size > maxBlobSize {
        out.append(
          (i, nil, Diagnostic(.error, .fileTooLarge, "file is \(size) bytes; the limit is \(maxBlobSize)", at: mark(pending[i].display))))
        continue
      }
      let bytes = try odb.read(&oid)
      out.append((i, ManifestSource(displayPath: pending[i].display, relativePath: pending[i].rel, content: .bytes(bytes)), nil))
    }
    return out
  }

  struct Pending {
    var display: String
    var rel: String
    var oid: git_oid
  }

  /// Reads the blobs, in order. Large sets are split across threads, each with its own
  /// repository handle (libgit2 handles are not shared between threads). A blob's size is
  /// checked from its header before it is inflated.
  static func readBlobs(_ pending: [Pending], repo: Repository, odb: ODB, maxBlobSize: Int) throws(GitError) -> (
    [ManifestSource], [Diagnostic]
  ) {
    let workers = pending.count < 512 ? 1 : min(4, max(1, ProcessInfo.processInfo.activeProcessorCount))
    var results: [(Int, ManifestSource?, Diagnostic?)]
    if workers == 1 {
      results = try readRange(pending, 0..<pending.count, odb, maxBlobSize)
    } else {
      let path = repo.path
      let chunk = (pending.count + workers - 1) / workers
      nonisolated(unsafe) var parts = [Result<[(Int, ManifestSource?, Diagnostic?)], GitError>?](repeating: nil, count: workers)
      let shared = pending
      parts.withUnsafeMutableBufferPointer { buf in
        nonisolated(unsafe) let b = buf
        DispatchQueue.concurrentPerform(iterations: workers) { w in
          let range = (w * chunk)..<min(pending.count, (w + 1) * chunk)
          do throws(GitError) {
            let r = try Repository.openBare(path)
            b[w] = .success(try readRange(shared, range, try r.odb(), maxBlobSize))
          } catch {
            b[w] = .failure(error)
          }
        }
      }
      results = []
      results.reserveCapacity(pending.count)
      for p in parts { results.append(contentsOf: try p!.get()) }
    }
    var sources: [ManifestSource] = []
    var diags: [Diagnostic] = []
    sources.reserveCapacity(results.count)
    for (_, s, d) in results {
      if let s { sources.append(s) }
      if let d { diags.append(d) }
    }
    return (sources, diags)
  }

  /// The ignore rules that apply to files in directory `dir` (relative to the manifest
  /// folder): every `.ytempireignore` from the folder down to `dir`.
  static func rules(for dir: String, top: Tree, repo: Repository, odb: ODB, cache: inout [String: IgnoreRules]) throws(GitError)
    -> IgnoreRules
  {
    if let r = cache[dir] { return r }
    var rules: IgnoreRules
    let tree: Tree?
    if dir.isEmpty {
      rules = IgnoreRules()
      tree = top
    } else {
      let parent = dir.contains("/") ? String(dir[..<dir.lastIndex(of: "/")!]) : ""
      rules = try self.rules(for: parent, top: top, repo: repo, odb: odb, cache: &cache)
      tree = try top.subtree(repo, path: dir)
    }
    if let tree, let ig = tree.entry(named: DirectorySource.ignoreFileName) {
      rules.append(parsing: String(decoding: try odb.read(ig.id), as: UTF8.self), base: dir.isEmpty ? "" : dir + "/")
    }
    cache[dir] = rules
    return rules
  }

  /// Whether `rel` (a file, relative to the manifest folder) is ignored by the rules in
  /// `top`, including rules that ignore one of its parent directories.
  static func isIgnored(_ rel: String, top: Tree, repo: Repository, odb: ODB, cache: inout [String: IgnoreRules]) throws(GitError) -> Bool {
    let comps = rel.split(separator: "/").map(String.init)
    var dir = ""
    for c in comps.dropLast() {
      let rules = try self.rules(for: dir, top: top, repo: repo, odb: odb, cache: &cache)
      let child = dir.isEmpty ? c : dir + "/" + c
      if rules.isIgnored(child, isDirectory: true) { return true }
      dir = child
    }
    return try self.rules(for: dir, top: top, repo: repo, odb: odb, cache: &cache).isIgnored(rel, isDirectory: false)
  }

  /// The manifest changes between two commits under `options.path`.
  static func diff(_ repo: Repository, from: String, to: String, options: TreeReadOptions) throws(GitError) -> ManifestChanges {
    guard let a = ObjectID(hex: from), let b = ObjectID(hex: to) else { throw GitError(.invalidArgument, "bad commit id") }
    let base = options.normalizedPath
    let oldRoot = try repo.commit(a).tree()
    let newRoot = try repo.commit(b).tree()
    let oldTop = base.isEmpty ? oldRoot : try oldRoot.subtree(repo, path: base)
    let newTop = base.isEmpty ? newRoot : try newRoot.subtree(repo, path: base)
    let odb = try repo.odb()

    var opts = git_diff_options()
    git_diff_options_init(&opts, UInt32(GIT_DIFF_OPTIONS_VERSION))
    // Without GIT_DIFF_INCLUDE_TYPECHANGE a symlink ↔ file change is a delete plus an add.
    var diff: OpaquePointer?
    let prefix = base.isEmpty ? "" : base + "/"
    let rc: Int32
    if prefix.isEmpty {
      rc = git_diff_tree_to_tree(&diff, repo.pointer, oldRoot.pointer, newRoot.pointer, &opts)
    } else {
      rc = try withStrarray([base]) { (specs) throws(GitError) -> Int32 in
        opts.pathspec = specs.pointee
        opts.flags |= GIT_DIFF_DISABLE_PATHSPEC_MATCH.rawValue
        return git_diff_tree_to_tree(&diff, repo.pointer, oldRoot.pointer, newRoot.pointer, &opts)
      }
    }
    try LibGit2.check(rc, "cannot diff \(from.prefix(12))..\(to.prefix(12))")
    defer { git_diff_free(diff) }

    var changes = ManifestChanges()
    var oldCache: [String: IgnoreRules] = [:]
    var newCache: [String: IgnoreRules] = [:]
    func isRegular(_ mode: UInt16) -> Bool { UInt32(mode) == modeBlob || UInt32(mode) == modeExec }
    for i in 0..<git_diff_num_deltas(diff) {
      let d = git_diff_get_delta(diff, i)!.pointee
      let oldPath = d.old_file.path.map { String(cString: $0) } ?? ""
      let newPath = d.new_file.path.map { String(cString: $0) } ?? ""
      let path = d.status == GIT_DELTA_DELETED ? oldPath : newPath
      guard path.hasPrefix(prefix) else { continue }
      let rel = String(path.dropFirst(prefix.count))
      let name = rel.split(separator: "/").last.map(String.init) ?? rel
      if DirectorySource.isUnderHiddenDirectory(rel) { continue }
      if name == DirectorySource.ignoreFileName {
        changes.ignoreRulesChanged = true
        continue
      }
      let wasFile = d.status != GIT_DELTA_ADDED && isRegular(d.old_file.mode)
      let isFile = d.status != GIT_DELTA_DELETED && isRegular(d.new_file.mode)
      let wasVisible: Bool =
        if wasFile, let oldTop { try !isIgnored(rel, top: oldTop, repo: repo, odb: odb, cache: &oldCache) } else { false }
      let isVisible: Bool =
        if isFile, let newTop { try !isIgnored(rel, top: newTop, repo: repo, odb: odb, cache: &newCache) } else { false }
      guard isManifestName(name) else {
        if wasVisible || isVisible { changes.otherFilesChanged.append(path) }
        continue
      }
      switch (wasVisible, isVisible) {
      case (false, true): changes.added.append(path)
      case (true, false): changes.deleted.append(path)
      case (true, true): changes.modified.append(path)
      case (false, false): break
      }
    }
    return changes
  }
}

extension ManifestTree {
  /// Validates the manifests of the commit (file references checked against its tree); an
  /// empty tree is a warning located at `emptyName`.
  public func validate(options: LoadOptions = LoadOptions(), emptyName: String) -> ValidationReport {
    var extra = diagnostics
    if sources.isEmpty && !extra.contains(where: { $0.severity == .error }) {
      extra.append(
        Diagnostic(
          .warning, .emptyRepository, "no *.yaml or *.yml manifests found at \(revision)",
          at: .init(file: emptyName, line: 1, column: 1)))
    }
    let files = self.files
    let tree = self
    // A referenced workflow file is read from the mirror only when a manifest names it.
    return ManifestLoader.validate(
      sources, options: options, extraDiagnostics: extra, fileExists: { files.contains($0) },
      readFile: { tree.readFile($0) })
  }
}
