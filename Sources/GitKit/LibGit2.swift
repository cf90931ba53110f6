import Basics
internal import CGit2
import Foundation
import Synchronization

/// libgit2 process-wide initialisation, done once, lazily and thread-safely.
enum LibGit2 {
  private static let initialised: Bool = {
    _ = git_libgit2_init()
    return true
  }()

  static func ensureInitialised() { _ = initialised }

  /// Whether this libgit2 was built with SSH and HTTPS transports.
  static var features: (ssh: Bool, https: Bool) {
    ensureInitialised()
    let f = git_libgit2_features()
    return (f & Int32(GIT_FEATURE_SSH.rawValue) != 0, f & Int32(GIT_FEATURE_HTTPS.rawValue) != 0)
  }

  /// The last libgit2 error for return code `rc`, classified.
  static func error(_ rc: Int32, _ context: String, secrets: [String] = []) -> GitError {
    var message = "unknown libgit2 error"
    var klass: Int32 = 0
    if let e = git_error_last() {
      klass = e.pointee.klass
      if let m = e.pointee.message { message = String(cString: m) }
    }
    let code = classify(rc: rc, klass: klass, message: message)
    let text = Redaction.scrub("\(context): \(message)", secrets: secrets, urls: true)
    return GitError(code, text, libgit2Class: klass, libgit2Code: rc)
  }

  static func classify(rc: Int32, klass: Int32, message: String) -> GitError.Code {
    if rc == GIT_EAUTH.rawValue { return .authentication }
    if rc == GIT_ENOTFOUND.rawValue { return .notFound }
    if rc == GIT_ENONFASTFORWARD.rawValue { return .nonFastForward }
    if rc == GIT_ECERTIFICATE.rawValue { return klass == Int32(GIT_ERROR_SSL.rawValue) ? .tls : .hostKey }
    let lower = message.lowercased()
    if lower.contains("authentication") || lower.contains("401") || lower.contains("403") || lower.contains("credentials") {
      return .authentication
    }
    switch UInt32(bitPattern: klass) {
    case GIT_ERROR_SSL.rawValue:
      return .tls
    case GIT_ERROR_NET.rawValue, GIT_ERROR_SSH.rawValue, GIT_ERROR_HTTP.rawValue:
      return .unreachable
    case GIT_ERROR_ODB.rawValue, GIT_ERROR_ZLIB.rawValue, GIT_ERROR_INDEXER.rawValue, GIT_ERROR_REPOSITORY.rawValue:
      return .corruptMirror
    default:
      return .other
    }
  }

  /// Runs a libgit2 call and throws its error when the return code is negative.
  @discardableResult
  static func check(_ rc: Int32, _ context: @autoclosure () -> String, secrets: [String] = []) throws(GitError) -> Int32 {
    if rc < 0 { throw error(rc, context(), secrets: secrets) }
    return rc
  }
}

// MARK: - Object ids

/// A SHA-1 object id, kept as 40 lowercase hex digits.
public struct ObjectID: Hashable, Sendable, CustomStringConvertible, Comparable {
  public let hex: String

  public init?(hex: String) {
    guard hex.utf8.count == 40, hex.utf8.allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) || ($0 >= 65 && $0 <= 70) }) else {
      return nil
    }
    self.hex = hex.lowercased()
  }

  init(_ oid: git_oid) {
    let digits: [UInt8] = Array("0123456789abcdef".utf8)
    hex = withUnsafeBytes(of: oid.id) { raw in
      String(unsafeUninitializedCapacity: 40) { out in
        for (i, b) in raw.prefix(20).enumerated() {
          out[2 * i] = digits[Int(b >> 4)]
          out[2 * i + 1] = digits[Int(b & 15)]
        }
        return 40
      }
    }
  }

  init(_ p: UnsafePointer<git_oid>) { self.init(p.pointee) }

  var oid: git_oid {
    var o = git_oid()
    _ = git_oid_fromstrn(&o, hex, 40)
    return o
  }

  public var description: String { hex }
  public static func < (a: ObjectID, b: ObjectID) -> Bool { a.hex < b.hex }
}

// MARK: - Handles

/// An open repository. Not Sendable: it lives on the thread that opened it.
final class Repository {
  let pointer: OpaquePointer
  let path: String

  private init(_ pointer: OpaquePointer, path: String) {
    self.pointer = pointer
    self.path = path
  }

  deinit { git_repository_free(pointer) }

  static func openBare(_ path: String) throws(GitError) -> Repository {
    LibGit2.ensureInitialised()
    var p: OpaquePointer?
    let rc = git_repository_open_ext(&p, path, UInt32(GIT_REPOSITORY_OPEN_NO_SEARCH.rawValue | GIT_REPOSITORY_OPEN_BARE.rawValue), nil)
    guard rc == 0, let p else {
      var e = LibGit2.error(rc, "cannot open mirror")
      e.code = .corruptMirror
      throw e
    }
    return Repository(p, path: path)
  }

  static func initBare(_ path: String) throws(GitError) -> Repository {
    LibGit2.ensureInitialised()
    var p: OpaquePointer?
    try LibGit2.check(git_repository_init(&p, path, 1), "cannot create mirror")
    return Repository(p!, path: path)
  }

  func odb() throws(GitError) -> ODB {
    var p: OpaquePointer?
    try LibGit2.check(git_repository_odb(&p, pointer), "cannot open object database")
    return ODB(p!)
  }

  /// The commit a reference name (or an object id) peels to.
  func peelToCommit(reference name: String) throws(GitError) -> (ObjectID, String) {
    var ref: OpaquePointer?
    try LibGit2.check(git_reference_lookup(&ref, pointer, name), "cannot find \(name)")
    defer { git_reference_free(ref) }
    var resolved: OpaquePointer?
    try LibGit2.check(git_reference_resolve(&resolved, ref), "cannot resolve \(name)")
    defer { git_reference_free(resolved) }
    var obj: OpaquePointer?
    let rc = git_reference_peel(&obj, resolved, GIT_OBJECT_COMMIT)
    if rc == GIT_ENOTFOUND.rawValue {
      // The reference exists but its object does not: the object database lost it.
      var e = LibGit2.error(rc, "\(name) points at a missing object")
      e.code = .corruptMirror
      throw e
    }
    try LibGit2.check(rc, "\(name) does not point at a commit")
    defer { git_object_free(obj) }
    let full = String(cString: git_reference_name(resolved))
    return (ObjectID(git_object_id(obj)!), full)
  }

  func referenceExists(_ name: String) -> Bool {
    var ref: OpaquePointer?
    let rc = git_reference_lookup(&ref, pointer, name)
    if rc == 0 { git_reference_free(ref) }
    return rc == 0
  }

  /// The target of a symbolic reference (e.g. HEAD → refs/heads/main).
  func symbolicTarget(_ name: String) -> String? {
    var ref: OpaquePointer?
    guard git_reference_lookup(&ref, pointer, name) == 0 else { return nil }
    defer { git_reference_free(ref) }
    guard git_reference_type(ref) == GIT_REFERENCE_SYMBOLIC, let t = git_reference_symbolic_target(ref) else { return nil }
    return String(cString: t)
  }

  func commit(_ id: ObjectID) throws(GitError) -> Commit {
    var oid = id.oid
    var c: OpaquePointer?
    let rc = git_commit_lookup(&c, pointer, &oid)
    guard rc == 0, let c else {
      var e = LibGit2.error(rc, "cannot read commit \(id.hex)")
      if e.code == .other { e.code = .notFound }
      throw e
    }
    return Commit(c)
  }

  /// Looks up an abbreviated (or full) commit id.
  func commit(prefix hex: String) throws(GitError) -> Commit {
    var oid = git_oid()
    try LibGit2.check(git_oid_fromstrn(&oid, hex, hex.utf8.count), "invalid commit id \(hex)")
    var obj: OpaquePointer?
    try LibGit2.check(git_object_lookup_prefix(&obj, pointer, &oid, hex.utf8.count, GIT_OBJECT_COMMIT), "cannot find commit \(hex)")
    return Commit(obj!)
  }

  func tree(_ id: ObjectID) throws(GitError) -> Tree {
    var oid = id.oid
    var t: OpaquePointer?
    try LibGit2.check(git_tree_lookup(&t, pointer, &oid), "cannot read tree \(id.hex)")
    return Tree(t!)
  }

  func isDescendant(_ commit: ObjectID, of ancestor: ObjectID) -> Bool {
    var a = commit.oid
    var b = ancestor.oid
    return git_graph_descendant_of(pointer, &a, &b) == 1
  }

  func setReference(_ name: String, to id: ObjectID, message: String) throws(GitError) {
    var oid = id.oid
    var ref: OpaquePointer?
    try LibGit2.check(git_reference_create(&ref, pointer, name, &oid, 1, message), "cannot update \(name)")
    git_reference_free(ref)
  }

  func setSymbolicReference(_ name: String, to target: String) throws(GitError) {
    var ref: OpaquePointer?
    try LibGit2.check(git_reference_symbolic_create(&ref, pointer, name, target, 1, "ytempire: remote HEAD"), "cannot set \(name)")
    git_reference_free(ref)
  }

  func deleteReference(_ name: String) {
    var ref: OpaquePointer?
    if git_reference_lookup(&ref, pointer, name) == 0 {
      _ = git_reference_delete(ref)
      git_reference_free(ref)
    }
  }
}

final class ODB {
  let pointer: OpaquePointer
  init(_ p: OpaquePointer) { pointer = p }
  deinit { git_odb_free(pointer) }

  /// Size and type of an object without inflating it.
  func header(_ id: UnsafePointer<git_oid>) -> (Int, git_object_t)? {
    var size = 0
    var type = GIT_OBJECT_INVALID
    guard git_odb_read_header(&size, &type, pointer, id) == 0 else { return nil }
    return (size, type)
  }

  /// The bytes of an object.
  func read(_ id: UnsafePointer<git_oid>) throws(GitError) -> [UInt8] {
    var obj: OpaquePointer?
    try LibGit2.check(git_odb_read(&obj, pointer, id), "cannot read object \(ObjectID(id).hex)")
    defer { git_odb_object_free(obj) }
    let n = git_odb_object_size(obj)
    guard n > 0, let data = git_odb_object_data(obj) else { return [] }
    return Array(UnsafeRawBufferPointer(start: data, count: n))
  }
}

final class Commit {
  let pointer: OpaquePointer
  init(_ p: OpaquePointer) { pointer = p }
  deinit { git_commit_free(pointer) }

  var id: ObjectID { ObjectID(git_commit_id(pointer)) }
  var treeID: ObjectID { ObjectID(git_commit_tree_id(pointer)) }
  var summary: String { git_commit_summary(pointer).map { String(cString: $0) } ?? "" }
  var time: Date { Date(timeIntervalSince1970: TimeInterval(git_commit_time(pointer))) }

  func tree() throws(GitError) -> Tree {
    var t: OpaquePointer?
    try LibGit2.check(git_commit_tree(&t, pointer), "cannot read the tree of commit \(id.hex)")
    return Tree(t!)
  }
}

final class Tree {
  let pointer: OpaquePointer
  init(_ p: OpaquePointer) { pointer = p }
  deinit { git_tree_free(pointer) }

  var id: ObjectID { ObjectID(git_tree_id(pointer)) }
  var count: Int { git_tree_entrycount(pointer) }

  struct Entry {
    var name: String
    var mode: git_filemode_t
    var id: UnsafePointer<git_oid>
  }

  /// Entry `i`; `id` is valid while the tree is alive.
  func entry(_ i: Int) -> Entry {
    let e = git_tree_entry_byindex(pointer, i)!
    return Entry(name: String(cString: git_tree_entry_name(e)), mode: git_tree_entry_filemode(e), id: git_tree_entry_id(e))
  }

  func entry(named name: String) -> Entry? {
    guard let e = git_tree_entry_byname(pointer, name) else { return nil }
    return Entry(name: name, mode: git_tree_entry_filemode(e), id: git_tree_entry_id(e))
  }

  /// The subtree at a '/'-separated path (nil when absent or not a directory).
  func subtree(_ repo: Repository, path: String) throws(GitError) -> Tree? {
    var e: OpaquePointer?
    let rc = git_tree_entry_bypath(&e, pointer, path)
    if rc == GIT_ENOTFOUND.rawValue { return nil }
    try LibGit2.check(rc, "cannot look up \(path)")
    defer { git_tree_entry_free(e) }
    guard git_tree_entry_filemode(e) == GIT_FILEMODE_TREE else { return nil }
    var t: OpaquePointer?
    try LibGit2.check(git_tree_lookup(&t, repo.pointer, git_tree_entry_id(e)), "cannot read tree \(path)")
    return Tree(t!)
  }
}

/// A C string array built from Swift strings, valid inside `body`.
func withStrarray<T>(_ strings: [String], _ body: (UnsafeMutablePointer<git_strarray>) throws(GitError) -> T) throws(GitError) -> T {
  let cstrs: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
  defer { for p in cstrs { free(p) } }
  var copy = cstrs
  return try copy.withUnsafeMutableBufferPointer { (buf) throws(GitError) -> T in
    var arr = git_strarray(strings: buf.baseAddress, count: buf.count)
    return try body(&arr)
  }
}
