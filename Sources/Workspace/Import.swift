import Basics
import DriverKit
import EmpireModel
import Foundation
import Reconciler
import YAMLKit
import YouTubeDriver

/// `ytempire import` (DESIGN A10 "Import", docs/import.md): price, read, name, write through
/// YAMLKit's emitter, validate, and with `--adopt` record what was read as owned.
public struct ImportOptions: Sendable {
  public var out: String
  public var kinds: [Kind] = []
  public var youtubeCredentials: [String] = []
  public var adopt = false
  public var dryRun = false
  public var maxUnits: Int?
  public var force = false
  /// Where the JSON Schemas are, for the `$schema` modelines.
  public var schemas = "/usr/local/share/ytempire/schemas"
  public init(out: String) { self.out = out }
}

/// The price of an import, known before any call.
public struct ImportPreparation: Sendable {
  public var request: ImportRequest
  public var calls: [PlannedCall]
  /// The RateLimits that price and limit the import's calls.
  let index: DesiredIndex
  /// Where the prices come from: the configured source's RateLimits, or the APIs' published defaults.
  public var pricedBy: String
  public var units: Int { calls.reduce(0) { $0 + $1.units } }
  /// Per service: calls and units, by service name.
  public var byService: [(service: String, calls: Int, units: Int)] {
    let g = Dictionary(grouping: calls, by: \.service)
    return g.keys.sorted().map { s in (s, g[s]!.count, g[s]!.reduce(0) { $0 + $1.units }) }
  }
}

/// What an import did (or, with `--dry-run`, would do).
public struct ImportReport: Sendable {
  public struct Written: Sendable {
    public var id: ResourceID
    public var file: String
    /// Extra files of the resource (a workflow's JSON).
    public var files: [String]
  }
  public var resources: [Written] = []
  public var notImported: [NotImported] = []
  public var errors: [String] = []
  public var adopted = 0
  public var unitsSpent = 0
  public var dryRun = false
}

/// Why an import stopped before writing anything.
public struct ImportRefused: Error, Sendable, CustomStringConvertible {
  public var description: String
  public init(_ d: String) { description = d }
}

extension Workspace {
  /// The YouTube quota the APIs publish, used when the configured source declares no RateLimit
  /// for YouTube (an empty repository): 10,000 units a day, a list call 1 unit.
  static let defaultYouTubeRateLimit = """
    apiVersion: ytempire.io/v1
    kind: RateLimit
    metadata: {name: youtube-api}
    spec:
      service: youtube
      quota:
        units: 10000
        window: daily
        resetAt: "00:00"
        timezone: America/Los_Angeles
        costs: {channels.list: 1, playlists.list: 1, videos.list: 1}
    """

  /// Which folder of the layout of `examples/empire/` holds a kind's manifests.
  static func folder(_ k: Kind) -> String {
    switch k {
    case .channel: "channels"
    case .schedule: "schedules"
    case .providerChain: "providers"
    case .rateLimit: "ratelimits"
    case .cdnZone: "cdn"
    case .securityPolicy: "security"
    case .monitor: "monitors"
    }
  }

  /// Prices the import: resolves which credentials it reads with, and which RateLimits price it.
  public func prepareImport(_ o: ImportOptions, engine: Engine) async throws(WorkspaceError) -> ImportPreparation {
    var request = ImportRequest(kinds: Set(o.kinds), explicitKinds: Set(o.kinds), youtubeCredentials: o.youtubeCredentials)
    for name in o.youtubeCredentials where config.secrets[name] == nil {
      throw WorkspaceError(.configInvalid, "--youtube-credentials \(name): the configuration's `secrets:` has no secret of that name")
    }
    if request.wants(.channel), let yt = engine.drivers.compactMap({ $0 as? YouTubeDriver }).first {
      request.youtubeCredentials = yt.importCredentials(request, configured: Array(config.secrets.keys))
    }
    // The configured source's RateLimits price the import when it has them.
    var limits: [Resource] = []
    var pricedBy = "the APIs' published quotas (the source declares no RateLimit for YouTube)"
    do {
      limits = try await load().resources.filter { $0.kind == .rateLimit }
    } catch {
      // An empty repository is the usual case for an import; any other reason is said.
      pricedBy = "the APIs' published quotas (the source's RateLimits could not be read: \(error.message))"
    }
    if limits.contains(where: { $0.rateLimit?.service == "youtube" }) {
      pricedBy = "the source's RateLimits"
    } else {
      let src = ManifestSource(
        displayPath: "(built-in youtube-api)", relativePath: "youtube-api.yaml", content: .bytes(Array(Self.defaultYouTubeRateLimit.utf8)))
      limits += ManifestLoader.validate([src]).resources
    }
    let index = DesiredIndex(limits)
    return ImportPreparation(request: request, calls: engine.importPrice(request, pricing: index), index: index, pricedBy: pricedBy)
  }

  /// Reads, writes and (with `adopt`) records. Nothing is written when the output would not
  /// validate or would overwrite a file (without `force`).
  public func runImport(_ p: ImportPreparation, _ o: ImportOptions, engine: Engine) async throws -> ImportReport {
    if let m = o.maxUnits, p.units > m {
      throw ImportRefused("the import costs at least \(p.units) units, more than --max-units \(m); nothing was read")
    }
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: o.out, isDirectory: &isDirectory), !isDirectory.boolValue {
      throw ImportRefused("--out \(TextEscape.escape(o.out)) exists and is not a directory; nothing was read")
    }
    let budget = ImportBudget(limit: o.maxUnits)
    let found = try await engine.discover(p.request, pricing: p.index, budget: budget)
    var report = ImportReport()
    report.dryRun = o.dryRun
    report.unitsSpent = budget.spent

    // Names: unique within the import. What DIR already declares is a clash (below), not a
    // reason to invent another name: a second import must not declare every object twice.
    var taken: [Kind: Set<String>] = [:]
    var items: [(driver: String, item: ImportedResource)] = []
    for (driver, r) in found {
      report.notImported += r.notImported
      report.errors += r.errors
      for var item in r.resources {
        item.name = ImportNames.unique(item.name, in: &taken[item.kind, default: []])
        items.append((driver, item))
      }
    }

    // Render every file in memory first.
    var files: [String: [UInt8]] = [:]
    for (_, item) in items {
      let rel = "\(Self.folder(item.kind))/\(item.name).yaml"
      files[rel] = try Self.manifest(item, schemas: o.schemas, notImported: report.notImported)
      for (path, bytes) in item.files { files[path] = bytes }
      report.resources.append(
        .init(id: ResourceID(item.kind, item.name), file: rel, files: item.files.keys.sorted()))
    }
    // Nothing is written through a symbolic link or over something that is not a regular file.
    let unsafe = files.keys.sorted().compactMap { Self.unsafePath($0, under: o.out) }
    if !unsafe.isEmpty {
      throw ImportRefused(unsafe.prefix(10).joined(separator: "; ") + "; nothing was written")
    }
    // Files that exist are overwritten only with --force; a name DIR declares in another file never is.
    let clashes = files.keys.sorted().filter { FileManager.default.fileExists(atPath: o.out + "/" + $0) }
    if !clashes.isEmpty && !o.force {
      throw ImportRefused(
        "\(o.out) already has \(clashes.map { TextEscape.escape($0) }.joined(separator: ", ")); nothing was written (--force overwrites)")
    }
    if FileManager.default.fileExists(atPath: o.out) {
      let declared = ManifestLoader.loadDirectory(o.out).report.resources
      let writing = Set(report.resources.map(\.id))
      let elsewhere = declared.filter { r in
        writing.contains(ResourceID(r)) && !files.keys.contains { r.mark.file == $0 || r.mark.file.hasSuffix("/" + $0) }
      }
      if !elsewhere.isEmpty {
        let list = elsewhere.map { "\($0.id) (\(TextEscape.escape($0.mark.file)))" }.joined(separator: ", ")
        throw ImportRefused("\(o.out) already declares \(list) in another file; nothing was written")
      }
    }

    // Nothing was found (or everything failed): nothing to validate or write; the errors say why.
    if files.isEmpty { return report }
    // Validate the output on its own before anything lands in DIR.
    let stage = FileManager.default.temporaryDirectory.appendingPathComponent("ytempire-import-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: stage) }
    try Self.write(files, to: stage)
    let staged = ManifestLoader.loadDirectory(stage)
    guard staged.report.isValid else {
      let errors = staged.report.diagnostics.filter { $0.severity == .error }.prefix(10).map {
        "\($0.file):\($0.line):\($0.column): \($0.severity.rawValue): \($0.message)"
      }
      throw ImportRefused("the imported manifests do not validate; nothing was written:\n" + errors.joined(separator: "\n"))
    }
    if o.dryRun { return report }
    try Self.write(files, to: o.out)

    if o.adopt {
      let byID = Dictionary(staged.report.resources.map { (ResourceID($0), $0) }, uniquingKeysWith: { a, _ in a })
      let index = DesiredIndex(staged.report.resources, files: RepositoryFiles { staged.readFile($0) })
      var adopted: [(driver: String, resource: Resource, item: ImportedResource)] = []
      for (driver, item) in items {
        guard let r = byID[ResourceID(item.kind, item.name)] else { continue }
        adopted.append((driver, r, item))
      }
      try engine.adopt(adopted, index: index, revision: "import@" + AuditLog.time(clock.wallNow))
      report.adopted = adopted.count
    }
    return report
  }

  static func write(_ files: [String: [UInt8]], to root: String) throws {
    let fm = FileManager.default
    for (rel, bytes) in files.sorted(by: { $0.key < $1.key }) {
      let path = root + "/" + rel
      try fm.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
      // A new file renamed into place: an existing name is replaced, never written through.
      let temporary = path + ".ytempire-import-" + UUID().uuidString
      guard fm.createFile(atPath: temporary, contents: Data(bytes)) else { throw ImportRefused("\(path): cannot be written") }
      guard rename(temporary, path) == 0 else {
        try? fm.removeItem(atPath: temporary)
        throw ImportRefused("\(path): cannot be written: \(String(cString: strerror(errno)))")
      }
    }
  }

  /// Why writing `rel` under `root` would go through a symbolic link or over something that is
  /// not a regular file (a directory, a device), or nil when it would not.
  static func unsafePath(_ rel: String, under root: String) -> String? {
    let parts = rel.split(separator: "/").map(String.init)
    var path = root
    for (i, part) in parts.enumerated() {
      path += "/" + part
      var st = stat()
      guard lstat(path, &st) == 0 else { return nil }  // nothing there yet: neither is anything below
      let type = st.st_mode & S_IFMT
      if type == S_IFLNK { return "\(TextEscape.escape(path)) is a symbolic link" }
      let last = i == parts.count - 1
      if last && type != S_IFREG { return "\(TextEscape.escape(path)) exists and is not a regular file" }
      if !last && type != S_IFDIR { return "\(TextEscape.escape(path)) is not a directory" }
    }
    return nil
  }

  // MARK: rendering

  /// One manifest: the `$schema` modeline and the notes as a comment, then the resource.
  static func manifest(_ item: ImportedResource, schemas: String, notImported: [NotImported]) throws -> [UInt8] {
    var metadata: [(String, YAMLValue)] = [("name", .string(item.name))]
    if !item.labels.isEmpty {
      metadata.append(("labels", .mapping(item.labels.sorted { $0.key < $1.key }.map { ($0.key, .string($0.value)) })))
    }
    let doc: YAMLValue = .mapping([
      ("apiVersion", .string("ytempire.io/v1")), ("kind", .string(item.kind.rawValue)),
      ("metadata", .mapping(metadata)), ("spec", yaml(item.spec)),
    ])
    let comment = (["yaml-language-server: $schema=\(schemas)/\(item.kind.rawValue.lowercased()).schema.json", ""] + item.notes)
      .joined(separator: "\n")
    return try YAMLEmitter.emit(doc, comment: comment)
  }

  /// Keys in the order the examples write them; others after them, by name.
  static let keyOrder: [String] = [
    "name", "active", "youtube", "channelId", "credentials", "branding", "title", "description", "keywords", "defaultLanguage",
    "country", "unsubscribedTrailer", "playlists", "privacy", "tags", "workflow", "workflowFile", "trigger", "every", "cron",
    "timezone", "channels", "channelSelector", "parameters", "provider", "zone", "type", "origin", "storage", "replication",
    "rules", "match", "edgeTTL", "browserTTL", "cacheLevel", "polish", "webp", "workers", "route", "scriptFile", "expr", "for", "severity",
    "summary", "runbook", "labels",
  ]
  static let keyRank: [String: Int] = Dictionary(keyOrder.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })

  static func yaml(_ v: JSONValue, depth: Int = 0) -> YAMLValue {
    guard depth < 48 else { return .null }
    switch v {
    case .null: return .null
    case .bool(let b): return .bool(b)
    case .string(let s): return .string(s)
    case .array(let a):
      let items = a.map { yaml($0, depth: depth + 1) }
      // Short lists of scalars in flow style, as the examples write keywords and tags.
      let scalars = a.allSatisfy { if case .array = $0 { false } else if case .object = $0 { false } else { true } }
      let width = a.reduce(0) { $0 + ($1.string?.count ?? 8) + 2 }
      return .sequence(items, flow: scalars && width <= 80)
    case .object(let o):
      let keys = o.keys.sorted { a, b in
        let ra = keyRank[a] ?? Int.max
        let rb = keyRank[b] ?? Int.max
        return ra == rb ? a < b : ra < rb
      }
      return .mapping(keys.map { ($0, yaml(o[$0]!, depth: depth + 1)) })
    case .int(let i): return .int(Int(i))
    case .double(let d): return .double(d)
    }
  }
}
