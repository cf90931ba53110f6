import DriverKit
import EmpireModel
import Foundation
import GitKit
import PlanFile
import Reconciler

/// The desired state of one revision, wherever it came from.
public struct LoadedRevision: Sendable {
  /// `main@sha1:<40 hex>` for a commit, `dir@sha256:<hex>` for a directory.
  public var revision: String
  public var resources: [Resource]
  /// The commit, when the revision came from a git source.
  public var commit: Revision?
  /// The git source, when the revision is a commit (status is committed there).
  public var git: GitSource?
  public var isLocalRepository: Bool
  /// The revision's non-manifest files (workflow JSON, worker scripts) for the drivers.
  public var files: RepositoryFiles = .none
  /// The source could not be reached or refused the new revision: why (the last good revision is used).
  public var sourceWarning: String?
  /// Warnings of a revision that validates (errors stop it from loading).
  public var diagnostics: [Diagnostic] = []
  public var omitted = 0
  /// Whether this revision came from the configured ref (not `--ref` or a PATH): only those
  /// move the source's remembered revisions.
  public var followsConfiguredRef = false
}

/// What the state store remembers of a source: the commit, and which source and ref it was
/// of (a hash: a URL may carry a token), so a changed `source.url` or `ref` is not compared
/// with another repository's history.
struct SourceMark: Codable, Sendable {
  var source: String
  var revision: Revision

  static func sourceKey(url: String, ref: String?) -> String { sha256Hex(Array("\(url)\n\(ref ?? "")".utf8)) }
}

extension Workspace {
  static func isGitRepository(_ path: String) -> Bool {
    let fm = FileManager.default
    return fm.fileExists(atPath: path + "/.git") || (fm.fileExists(atPath: path + "/HEAD") && fm.fileExists(atPath: path + "/objects"))
  }

  /// The git source of `ref` (nil: the configured one), made once and kept for the
  /// workspace's life: `serve` asks it again on every poll, so its last good revision holds.
  func gitSource(ref: String?) throws(WorkspaceError) -> GitSource {
    let key = ref ?? ""
    // A pull request's head is force-pushed as a matter of course, and there is one per pull
    // request: such sources accept any history and are not kept.
    let review = ref.map { $0.hasPrefix("refs/pull/") || $0.hasPrefix("refs/merge-requests/") } ?? false
    if !review, let s = gitSources.withLock({ $0[key] }) { return s }
    let src = config.source
    var auth = GitAuth.none
    do {
      if let t = src.auth.token { auth = .token(try secret(t).resolve()) }
    } catch {
      throw WorkspaceError(.source, "source.auth.token: \(error)")
    }
    if let k = src.auth.sshKey {
      // GitKit takes a key file.
      guard case .file(let f) = k.source else {
        throw WorkspaceError(.source, "source.auth.sshKey must be a {file: PATH} reference to the private key file")
      }
      auth = .sshKey(privateKey: f, knownHosts: src.auth.knownHosts)
    }
    let cfg = GitSourceConfig(
      url: src.url, ref: ref ?? src.ref, path: src.path, stateDir: config.stateDir, auth: auth,
      timeouts: GitTimeouts(connect: src.timeouts.connect.swiftDuration, transfer: src.timeouts.transfer.swiftDuration),
      verify: SignatureVerification(
        mode: src.verify.mode == .head ? .head : .off,
        allowedSigners: src.verify.allowedSigners, gpgHome: src.verify.gpgHome),
      allowRewrite: src.allowRewrite || review,
      caFile: GitSourceConfig.caFile(configured: src.caFile, environment: environment))
    let git: GitSource
    do { git = try GitSource(cfg) } catch { throw WorkspaceError(.source, "source: \(error.message) [\(error.code.rawValue)]") }
    if review { return git }
    return gitSources.withLock { s in
      if let existing = s[key] { return existing }
      s[key] = git
      return git
    }
  }

  var configuredSourceKey: String { SourceMark.sourceKey(url: config.source.url, ref: config.source.ref) }

  /// A remembered revision of the configured source (nil when none, or it was of another source or ref).
  func mark(_ key: MetaKey) -> Revision? {
    guard let text = try? store.meta(key), let m = try? JSONDecoder().decode(SourceMark.self, from: Data(text.utf8)),
      m.source == configuredSourceKey
    else { return nil }
    return m.revision
  }

  func remember(_ key: MetaKey, _ revision: Revision) throws {
    let data = try JSONEncoder().encode(SourceMark(source: configuredSourceKey, revision: revision))
    try store.setMeta(key, String(decoding: data, as: UTF8.self))
  }

  /// Syncs the git source and reads the manifests of the revision it answers with.
  func loadGit(ref: String?) async throws(WorkspaceError) -> LoadedRevision {
    let src = config.source
    let follows = ref == nil || ref == src.ref
    let git = try gitSource(ref: follows ? nil : ref)
    let applied = follows ? mark(.sourceLastApplied) : nil
    let good = follows ? mark(.sourceLastGood) : nil
    let sync = await git.sync(lastApplied: applied, lastGood: good)
    var warning: String?
    if let e = sync.error {
      if e.code == .historyRewritten {
        throw WorkspaceError(.historyRewritten, "source: \(e.message) [\(e.code.rawValue)]; nothing is planned or applied")
      }
      guard let last = sync.revision else { throw WorkspaceError(.source, "source: \(e.message) [\(e.code.rawValue)]") }
      warning = "source: \(e.message) [\(e.code.rawValue)]; using the last good revision \(last)"
    }
    guard let revision = sync.revision else { throw WorkspaceError(.source, "source: no revision") }
    if follows && sync.error == nil { try? remember(.sourceLastGood, revision) }
    let tree: ManifestTree
    do { tree = try await git.manifests(at: revision) } catch {
      throw WorkspaceError(.source, "source: \(error.message) [\(error.code.rawValue)]")
    }
    let report = tree.validate(emptyName: src.path == "." ? git.mirror.displayURL : src.path)
    try Self.check(report, name: "\(git.mirror.displayURL) \(revision)")
    return LoadedRevision(
      revision: revision.description, resources: report.resources, commit: revision, git: git,
      isLocalRepository: src.isLocalPath, files: RepositoryFiles { tree.readFile($0) }, sourceWarning: warning,
      diagnostics: report.diagnostics, omitted: report.omitted, followsConfiguredRef: follows)
  }

  /// A working copy: every manifest under `root/subpath`, revision `dir@sha256:…`.
  func loadDirectory(_ root: String, subpath: String = ".") throws(WorkspaceError) -> LoadedRevision {
    var dir = subpath == "." || subpath.isEmpty ? root : root + "/" + subpath
    if dir.count > 1 && dir.hasSuffix("/") { dir.removeLast() }
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
      throw WorkspaceError(.source, "\(dir): not a directory")
    }
    let loaded = ManifestLoader.loadDirectory(dir)
    let report = loaded.report
    try Self.check(report, name: dir)
    return LoadedRevision(
      revision: Self.directoryRevision(loaded), resources: report.resources, commit: nil, git: nil,
      isLocalRepository: false, files: RepositoryFiles { loaded.readFile($0) },
      diagnostics: report.diagnostics, omitted: report.omitted)
  }

  /// `dir@sha256:` over the manifests' paths and bytes in path order, and over the files they
  /// may refer to (a changed worker script is a new revision).
  static func directoryRevision(_ loaded: LoadedDirectory) -> String {
    var hashed: [UInt8] = []
    for s in loaded.sources.sorted(by: { $0.relativePath < $1.relativePath }) {
      hashed += Array(s.relativePath.utf8) + [0]
      switch s.content {
      case .bytes(let b): hashed += b
      case .file(let p): hashed += (FileManager.default.contents(atPath: p).map { Array($0) } ?? [])
      }
      hashed.append(0)
    }
    let manifests = Set(loaded.sources.map(\.relativePath))
    for rel in loaded.files.sorted() where !manifests.contains(rel) {
      hashed += Array(rel.utf8) + [0] + (loaded.readFile(rel) ?? []) + [0]
    }
    return "dir@sha256:" + sha256Hex(hashed)
  }

  static func check(_ report: ValidationReport, name: String) throws(WorkspaceError) {
    guard report.isValid else {
      throw WorkspaceError(
        .invalidRevision, ValidationRun.summary(report, path: name) + " — nothing is planned until it validates (Stalled)",
        diagnostics: report.diagnostics, omitted: report.omitted)
    }
  }
}
