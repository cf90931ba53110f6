import Dispatch
import Foundation
import Synchronization
import YAMLKit

/// One manifest file to load: where to show it in diagnostics and where its bytes come from.
public struct ManifestSource: Sendable {
  public enum Content: Sendable {
    case file(path: String)
    case bytes([UInt8])
  }
  /// Path shown in diagnostics (relative to the repository root, or as the user wrote it).
  public var displayPath: String
  /// Path relative to the repository root ('/'-separated), for file references.
  public var relativePath: String
  public var content: Content

  public init(displayPath: String, relativePath: String, content: Content) {
    self.displayPath = displayPath
    self.relativePath = relativePath
    self.content = content
  }
}

public struct LoadOptions: Sendable {
  public var yamlLimits = YAMLLimits.default
  public var maxFiles = 200_000
  /// Worker threads that parse and decode files; defaults to the number of cores.
  public var parallelism = ProcessInfo.processInfo.activeProcessorCount
  /// Cross-resource rules (references, uniqueness, quota sums). Off for single-file checks.
  public var crossResourceRules = true
  public init() {}
}

/// The outcome of loading and validating a set of manifests.
public struct ValidationReport: Sendable {
  public var resources: [Resource]
  /// Sorted by file, line and column; at most `DiagnosticBag.perFileLimit` per file and
  /// `perRunLimit` in all (the rest are counted in `omittedErrors` / `omittedWarnings`).
  public var diagnostics: [Diagnostic]
  public var fileCount: Int
  public var omittedErrors = 0
  public var omittedWarnings = 0

  public init(resources: [Resource], diagnostics: [Diagnostic], fileCount: Int, omittedErrors: Int = 0, omittedWarnings: Int = 0) {
    self.resources = resources
    self.diagnostics = diagnostics
    self.fileCount = fileCount
    self.omittedErrors = omittedErrors
    self.omittedWarnings = omittedWarnings
  }

  public var errorCount: Int { diagnostics.count { $0.severity == .error } &+ omittedErrors }
  public var warningCount: Int { diagnostics.count { $0.severity == .warning } &+ omittedWarnings }
  /// Diagnostics counted but not listed.
  public var omitted: Int { omittedErrors &+ omittedWarnings }
  public var isValid: Bool { errorCount == 0 }

  public var countsByKind: [(Kind, Int)] {
    var counts: [Kind: Int] = [:]
    for r in resources { counts[r.kind, default: 0] += 1 }
    return Kind.allCases.compactMap { k in counts[k].map { (k, $0) } }
  }
}

public enum ManifestLoader {
  /// Parses and decodes every source (in parallel), then applies the cross-resource rules.
  /// `fileExists` answers whether a repository-relative path exists (workflow and worker
  /// script files); nil skips that check.
  public static func validate(
    _ sources: [ManifestSource], options: LoadOptions = LoadOptions(),
    extraDiagnostics: [Diagnostic] = [],
    fileExists: (@Sendable (String) -> Bool)? = nil,
    readFile: (@Sendable (String) -> [UInt8]?)? = nil
  ) -> ValidationReport {
    let results = Mutex<[(Int, [Resource], DiagnosticBag, [ResourceKey])]>([])
    let next = Atomic<Int>(0)
    let workers = max(1, min(options.parallelism, sources.count))
    DispatchQueue.concurrentPerform(iterations: workers) { _ in
      var local: [(Int, [Resource], DiagnosticBag, [ResourceKey])] = []
      while true {
        let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
        guard i < sources.count else { break }
        let (res, diags, invalid) = decodeFile(sources[i], limits: options.yamlLimits)
        local.append((i, res, diags, invalid))
      }
      results.withLock { $0.append(contentsOf: local) }
    }
    var perFile = results.withLock { $0 }
    perFile.sort { $0.0 < $1.0 }
    var resources: [Resource] = []
    var bag = DiagnosticBag()
    for d in extraDiagnostics { bag.append(d) }
    var invalid = Set<ResourceKey>()
    for (_, r, d, bad) in perFile {
      resources.append(contentsOf: r)
      bag.append(contentsOf: d)
      invalid.formUnion(bad)
    }
    if options.crossResourceRules {
      // Capped like a file's: a million broken references cost bounded memory too.
      var cross = DiagnosticBag(limit: DiagnosticBag.perRunLimit)
      CrossValidator.check(resources, into: &cross, fileExists: fileExists, readFile: readFile, invalid: invalid)
      bag.append(contentsOf: cross)
    }
    var diagnostics = bag.items
    diagnostics.sort(by: Diagnostic.reportOrder)
    var omittedErrors = bag.omittedErrors
    var omittedWarnings = bag.omittedWarnings
    if diagnostics.count > DiagnosticBag.perRunLimit {
      for d in diagnostics[DiagnosticBag.perRunLimit...] {
        if d.severity == .error { omittedErrors &+= 1 } else if d.severity == .warning { omittedWarnings &+= 1 }
      }
      diagnostics.removeSubrange(DiagnosticBag.perRunLimit...)
    }
    return ValidationReport(
      resources: resources, diagnostics: diagnostics, fileCount: sources.count,
      omittedErrors: omittedErrors, omittedWarnings: omittedWarnings)
  }

  /// Loads one file: YAML errors, then each document decoded.
  static func decodeFile(_ source: ManifestSource, limits: YAMLLimits) -> ([Resource], DiagnosticBag, [ResourceKey]) {
    let loaded: YAMLLoadResult
    switch source.content {
    case .file(let path): loaded = YAMLLoader.load(contentsOf: path, displayName: source.displayPath, limits: limits)
    case .bytes(let b): loaded = YAMLLoader.load(b, file: source.displayPath, limits: limits)
    }
    var diags = DiagnosticBag(limit: DiagnosticBag.perFileLimit)
    for e in loaded.errors { diags.append(diagnostic(from: e)) }
    // A file with a fatal YAML error is not decoded: what libyaml returned may be partial.
    if loaded.errors.contains(where: \.isFatal) { return ([], diags, []) }
    let decoder = NodeDecoder(diagnosticLimit: DiagnosticBag.perFileLimit)
    var resources: [Resource] = []
    for doc in loaded.documents {
      guard let root = decoder.tagsResolved(doc) else { continue }  // empty documents (e.g. a trailing ---) are allowed
      if let r = decoder.resource(root) { resources.append(r) }
    }
    diags.append(contentsOf: decoder.diags)
    return (resources, diags, decoder.invalidDeclared)
  }

  static func diagnostic(from e: YAMLError) -> Diagnostic {
    let code: DiagnosticCode =
      switch e.code {
      case .syntax: .yamlSyntax
      case .aliasLimit: .aliasLimit
      case .depthLimit: .depthLimit
      case .documentTooLarge: .documentTooLarge
      case .fileTooLarge: .fileTooLarge
      case .duplicateKey: .duplicateKey
      case .invalidEncoding: .invalidEncoding
      case .binaryContent: .binaryContent
      case .undefinedAlias: .undefinedAlias
      case .invalidMerge: .invalidMerge
      case .nodeLimit: .nodeLimit
      case .complexKey: .complexKey
      case .readError: .fileUnreadable
      }
    let notes = e.notes.map { Diagnostic.Note($0.message, at: $0.mark) }
    return Diagnostic(.error, code, e.message, at: e.mark, notes: notes)
  }
}

/// A working-copy directory, listed and validated.
public struct LoadedDirectory: Sendable {
  public var report: ValidationReport
  /// The manifests read, in listing order (for a content digest of the revision).
  public var sources: [ManifestSource]
  /// Every regular, non-ignored file under the directory, relative to it.
  public var files: Set<String> = []
  /// The directory `files` are relative to.
  public var base: String = ""

  /// A listed non-manifest file's bytes (regular files only, at most 16 MiB), else nil.
  public func readFile(_ rel: String) -> [UInt8]? {
    files.contains(rel) ? DirectorySource.readRegularFile(base + "/" + rel, maxBytes: 16 << 20) : nil
  }
}

extension ManifestLoader {
  /// Lists the manifests under `path` (a directory or one file) and validates them: the one
  /// place a directory is loaded, for `validate`, the engine's directory sources and the
  /// sandbox's seeder. `skipping`: a file not to read as a manifest (a `--config` file under PATH).
  public static func loadDirectory(_ path: String, options: LoadOptions = LoadOptions(), skipping: String? = nil) -> LoadedDirectory {
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
      let d = Diagnostic(.error, .fileUnreadable, "no such file or directory", at: .init(file: path, line: 1, column: 1))
      return LoadedDirectory(report: ValidationReport(resources: [], diagnostics: [d], fileCount: 0), sources: [])
    }
    let root = isDir.boolValue ? (path.hasSuffix("/") && path.count > 1 ? String(path.dropLast()) : path) : path
    var listing = DirectorySource.list(root: root)
    if let skipping {
      let skip = absolutePath(skipping)
      listing.sources.removeAll { if case .file(let p) = $0.content { absolutePath(p) == skip } else { false } }
    }
    var extra = listing.diagnostics
    if listing.sources.isEmpty {
      extra.append(Diagnostic(.warning, .emptyRepository, "no *.yaml or *.yml manifests found", at: .init(file: path, line: 1, column: 1)))
    }
    let files = listing.files
    let base = isDir.boolValue ? root : (root as NSString).deletingLastPathComponent
    let report = validate(
      listing.sources, options: options, extraDiagnostics: extra, fileExists: { files.contains($0) },
      readFile: { rel in files.contains(rel) ? DirectorySource.readRegularFile(base + "/" + rel, maxBytes: 16 << 20) : nil })
    return LoadedDirectory(report: report, sources: listing.sources, files: files, base: base)
  }

  static func absolutePath(_ p: String) -> String {
    ((p.hasPrefix("/") ? p : FileManager.default.currentDirectoryPath + "/" + p) as NSString).standardizingPath
  }
}
