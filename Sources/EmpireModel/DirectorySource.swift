import Foundation
import YAMLKit

/// Lists the manifests of a working-copy directory: `*.yaml` / `*.yml` files, honouring
/// `.ytempireignore` files (gitignore syntax) at any level, skipping `.git`, every other hidden
/// directory (`.github/workflows/ci.yml` is not a manifest) and symlinks.
public enum DirectorySource {
  public struct Listing: Sendable {
    public var sources: [ManifestSource]
    public var diagnostics: [Diagnostic]
    /// Every regular file that is not ignored, relative to the root (for file references).
    public var files: Set<String>
  }

  public static let ignoreFileName = ".ytempireignore"
  /// Folders nested deeper than this are not read (a located error says so).
  public static let maxDepth = 64

  /// `displayRoot` prefixes the paths shown in diagnostics ("" or "." for none).
  public static func list(root: String, displayRoot: String? = nil, maxFiles: Int = 200_000) -> Listing {
    let prefix: String = {
      let d = displayRoot ?? root
      if d.isEmpty || d == "." || d == "./" { return "" }
      return d.hasSuffix("/") ? d : d + "/"
    }()
    var sources: [ManifestSource] = []
    var diags: [Diagnostic] = []
    var files = Set<String>()
    var rules = IgnoreRules()
    var visited = 0

    // Depth-limited: deeply nested folders are one located error, not a stack overflow.
    func walk(_ rel: String, depth: Int) {
      let abs = rel.isEmpty ? root : root + "/" + rel
      let base = rel.isEmpty ? "" : rel + "/"
      if let text = readIgnoreFile(abs + "/" + ignoreFileName, display: prefix + base + ignoreFileName, &diags) {
        rules.append(parsing: text, base: base)
      }
      guard let entries = readDirectory(abs) else {
        diags.append(Diagnostic(.error, .fileUnreadable, "cannot read directory", at: SourceMark(file: prefix + rel, line: 1, column: 1)))
        return
      }
      for (name, type) in entries {
        if name == ".git" { continue }
        let childRel = base + name
        let childAbs = abs + "/" + name
        if type == .symlink {
          if isManifestName(name) {
            diags.append(
              Diagnostic(
                .warning, .symlinkSkipped, "symbolic link skipped; manifests must be regular files",
                at: SourceMark(file: prefix + childRel, line: 1, column: 1)))
          }
          continue
        }
        if type == .directory {
          if isHiddenDirectory(name) || rules.isIgnored(childRel, isDirectory: true) { continue }
          if depth + 1 > Self.maxDepth {
            diags.append(
              Diagnostic(
                .error, .depthLimit, "directories nested more than \(Self.maxDepth) levels deep are not read",
                at: SourceMark(file: prefix + childRel, line: 1, column: 1)))
            continue
          }
          walk(childRel, depth: depth + 1)
          continue
        }
        if type == .other {
          // A FIFO, device or socket: never opened (a FIFO would block the read forever).
          if isManifestName(name), !rules.isIgnored(childRel, isDirectory: false) {
            diags.append(
              Diagnostic(
                .error, .fileUnreadable, "not read: it \(describe(childAbs)); only regular files are read as manifests",
                at: SourceMark(file: prefix + childRel, line: 1, column: 1)))
          }
          continue
        }
        guard type == .regular, !rules.isIgnored(childRel, isDirectory: false) else { continue }
        files.insert(childRel)
        guard isManifestName(name) else { continue }
        visited += 1
        if visited > maxFiles {
          if visited == maxFiles + 1 {
            diags.append(
              Diagnostic(
                .error, .tooManyFiles, "more than \(maxFiles) manifest files; the rest are not read",
                at: SourceMark(file: prefix + childRel, line: 1, column: 1)))
          }
          continue
        }
        sources.append(ManifestSource(displayPath: prefix + childRel, relativePath: childRel, content: .file(path: childAbs)))
      }
    }

    var isDir: ObjCBool = false
    if FileManager.default.fileExists(atPath: root, isDirectory: &isDir), !isDir.boolValue {
      // A single file.
      let name = (root as NSString).lastPathComponent
      return Listing(
        sources: [ManifestSource(displayPath: displayRoot ?? root, relativePath: name, content: .file(path: root))],
        diagnostics: [], files: [name])
    }
    walk("", depth: 0)
    return Listing(sources: sources, diagnostics: diags, files: files)
  }

  enum EntryType { case regular, directory, symlink, other }

  /// "is a FIFO" (or device, socket) for a path that is not a regular file.
  static func describe(_ path: String) -> String {
    var st = stat()
    guard lstat(path, &st) == 0 else { return "cannot be read" }
    return "is " + YAMLLoader.describeFileType(Int(st.st_mode))
  }

  /// The bytes of a regular file of at most `maxBytes` (`RegularFile.read`); nil for anything
  /// else or when it cannot be read.
  public static func readRegularFile(_ path: String, maxBytes: Int) -> [UInt8]? {
    try? RegularFile.read(path, maxBytes: maxBytes)
  }

  /// The text of a `.ytempireignore`, read only when it is a regular file (opened non-blocking,
  /// checked on the descriptor); nil when absent. Anything else is a located error.
  static func readIgnoreFile(_ path: String, display: String, _ diags: inout [Diagnostic]) -> String? {
    let fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var st = stat()
    guard fstat(fd, &st) == 0 else { return nil }
    let type = st.st_mode & S_IFMT
    guard type == S_IFREG else {
      diags.append(
        Diagnostic(
          .error, .fileUnreadable, "not read: it is \(YAMLLoader.describeFileType(Int(type))); an ignore file must be a regular file",
          at: SourceMark(file: display, line: 1, column: 1)))
      return nil
    }
    let limit = 1 << 20
    guard st.st_size <= limit else {
      diags.append(
        Diagnostic(
          .error, .fileUnreadable, "is \(st.st_size) bytes; an ignore file may hold at most \(limit) bytes",
          at: SourceMark(file: display, line: 1, column: 1)))
      return nil
    }
    guard let bytes = RegularFile.readAll(fd, expected: Int(st.st_size)) else { return nil }
    return String(decoding: bytes.prefix(limit), as: UTF8.self)
  }

  /// The entries of a directory, sorted by name, with their types (from d_type, or lstat
  /// where the file system does not report it). nil when the directory cannot be opened.
  static func readDirectory(_ path: String) -> [(String, EntryType)]? {
    guard let dir = opendir(path) else { return nil }
    defer { closedir(dir) }
    var out: [(String, EntryType)] = []
    while let ent = readdir(dir) {
      let name = withUnsafePointer(to: ent.pointee.d_name) { ptr in
        ptr.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
      }
      if name == "." || name == ".." { continue }
      var type: EntryType
      switch Int32(ent.pointee.d_type) {
      case Int32(DT_REG): type = .regular
      case Int32(DT_DIR): type = .directory
      case Int32(DT_LNK): type = .symlink
      default:
        var st = stat()
        guard lstat(path + "/" + name, &st) == 0 else { continue }
        switch st.st_mode & S_IFMT {
        case S_IFREG: type = .regular
        case S_IFDIR: type = .directory
        case S_IFLNK: type = .symlink
        default: type = .other
        }
      }
      out.append((name, type))
    }
    out.sort { $0.0 < $1.0 }
    return out
  }

  /// Hidden directories (`.git`, `.github`, `.vscode`, …) are never walked: they hold tooling, not desired state.
  public static func isHiddenDirectory(_ name: String) -> Bool { name.hasPrefix(".") }

  /// Whether a repository-relative path lies under a hidden directory.
  public static func isUnderHiddenDirectory(_ rel: String) -> Bool {
    rel.split(separator: "/").dropLast().contains { $0.hasPrefix(".") }
  }

  static func isManifestName(_ name: String) -> Bool {
    (name.hasSuffix(".yaml") || name.hasSuffix(".yml")) && !name.hasPrefix(".")
  }
}
