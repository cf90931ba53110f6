import Foundation
import Sandbox
import TestSupport
import Testing
import YAMLKit

/// Paths shared by the end-to-end tests.
enum E2E {
  static let packageRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
  static var examples: String { packageRoot.appendingPathComponent("examples/empire").path }
  static var binary: String { packageRoot.appendingPathComponent(".build/debug/ytempire").path }

  /// Parses JSON text into Foundation objects.
  static func json(_ text: String) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
  }

  static func object(_ text: String) throws -> [String: Any] {
    guard let o = try json(text) as? [String: Any] else { throw E2EFailure("not a JSON object: \(text.prefix(300))") }
    return o
  }
}

struct E2EFailure: Error, CustomStringConvertible {
  var description: String
  init(_ d: String) { description = d }
}

/// Runs blocking work (processes, curl) on its own thread: the in-process sandbox serves its
/// requests on the cooperative pool, which a blocked test must never occupy.
func offload<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
  try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
    let t = Thread { c.resume(with: Result { try body() }) }
    t.stackSize = 1 << 20
    t.start()
  }
}

/// Waits (without blocking a thread of the cooperative pool) until a spawned process exits.
func waitForExit(_ p: Processes.Child, timeout: TimeInterval = 120) async throws {
  let deadline = Date().addingTimeInterval(timeout)
  while p.isRunning {
    if Date() > deadline {
      kill(p.processIdentifier, SIGKILL)
      throw E2EFailure("pid \(p.processIdentifier) still running after \(timeout)s")
    }
    try await Task.sleep(for: .milliseconds(10))
  }
}

/// The result of one run of the built binary.
struct Run: CustomStringConvertible, Sendable {
  var status: Int32
  var stdout: String
  var stderr: String
  var description: String { "exit \(status)\n--- stdout\n\(stdout)\n--- stderr\n\(stderr)" }
}

/// One test's world: a temporary directory holding a git repository made from a copy of
/// examples/empire, an in-process sandbox seeded from it, and a `ytempire.yaml` pointing at
/// both with its state directory inside the temporary directory. `stop()` at the end.
final class Empire: @unchecked Sendable {
  // @unchecked Sendable: a test uses its Empire from one task at a time; the sandbox and
  // the temporary directory are Sendable themselves, the rest is immutable after init.
  let tmp: TemporaryDirectory
  let repo: GitFixture
  let sandbox: SandboxServer
  let configPath: String
  let stateDir: String
  private(set) var configText: String

  /// - edit: changes to the repository's files before the first commit (and before seeding).
  /// - config: rewrites the rendered ytempire.yaml.
  init(
    faults: String? = nil, faultSeed: UInt64 = 0, credentials: SandboxCredentials = SandboxCredentials(), dailyUnits: Int? = nil,
    edit: (GitFixture) throws -> Void = { _ in }, config: (String) -> String = { $0 }
  ) async throws {
    tmp = try TemporaryDirectory("ytempire-e2e")
    let repoPath = tmp.sub("empire")
    try FileManager.default.copyItem(atPath: E2E.examples, toPath: repoPath)
    repo = try GitFixture.create(at: repoPath)
    try edit(repo)
    try repo.commit("Desired state from examples/empire")
    stateDir = tmp.sub("state")
    var o = SandboxOptions()
    o.seedFrom = repoPath
    o.faults = faults
    o.faultSeed = faultSeed
    o.credentials = credentials
    if let dailyUnits { o.quota.dailyUnits = dailyUnits }
    sandbox = try await SandboxServer.start(o)
    configPath = tmp.sub("ytempire.yaml")
    let rendered = SandboxConfigWriter.render(
      baseURL: sandbox.baseURL, credentials: sandbox.credentials, channels: sandbox.seed.channels,
      sourceDir: repoPath, stateDir: stateDir)
    configText = config(rendered)
    try Data(configText.utf8).write(to: URL(fileURLWithPath: configPath))
  }

  func stop() async { await sandbox.stop() }

  /// Makes an Empire, runs `body` with it and stops its sandbox, also when `body` throws.
  static func with(
    faults: String? = nil, faultSeed: UInt64 = 0, credentials: SandboxCredentials = SandboxCredentials(), dailyUnits: Int? = nil,
    edit: (GitFixture) throws -> Void = { _ in }, config: (String) -> String = { $0 },
    _ body: (Empire) async throws -> Void
  ) async throws {
    let e = try await Empire(
      faults: faults, faultSeed: faultSeed, credentials: credentials, dailyUnits: dailyUnits, edit: edit, config: config)
    do { try await body(e) } catch {
      await e.stop()
      throw error
    }
    await e.stop()
  }

  func writeConfig(_ text: String) throws {
    configText = text
    try Data(text.utf8).write(to: URL(fileURLWithPath: configPath))
  }

  // MARK: the binary

  /// Runs `ytempire <args> --config <ytempire.yaml>` to completion (stdin is /dev/null: no TTY).
  @discardableResult
  func run(_ args: [String], config: Bool = true, env: [String: String] = [:]) async throws -> Run {
    let argv = [E2E.binary] + args + (config ? ["--config", configPath] : [])
    let cwd = tmp.path
    let r = try await offload { try Processes.run(argv, cwd: cwd, env: ["NO_COLOR": "1"].merging(env) { $1 }, check: false) }
    return Run(status: r.status, stdout: r.stdout, stderr: r.stderr)
  }

  func run(_ args: String...) async throws -> Run { try await run(args) }

  /// `apply --auto-approve`, which must exit 0.
  @discardableResult
  func apply(_ extra: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) async throws -> Run {
    let r = try await run(["apply", "--auto-approve"] + extra)
    #expect(r.status == 0, "apply: \(r)", sourceLocation: sourceLocation)
    return r
  }

  /// `plan --output json`, parsed.
  func planJSON(_ extra: [String] = []) async throws -> [String: Any] {
    let r = try await run(["plan", "--output", "json"] + extra)
    guard r.status == 0 else { throw E2EFailure("plan --output json: \(r)") }
    return try E2E.object(r.stdout)
  }

  /// Starts the binary in the background (stdout and stderr to files in the temp dir).
  func spawn(_ args: [String], env: [String: String] = [:], log: String = "spawn", config: String? = nil) throws -> Processes.Child {
    _ = FileManager.default.createFile(atPath: tmp.sub(log + ".out"), contents: nil)
    _ = FileManager.default.createFile(atPath: tmp.sub(log + ".err"), contents: nil)
    return try Processes.start(
      [E2E.binary] + args + ["--config", config ?? configPath], cwd: tmp.path,
      env: env.merging(["NO_COLOR": "1"]) { a, _ in a },
      stdout: .file(tmp.sub(log + ".out")), stderr: .file(tmp.sub(log + ".err")))
  }

  // MARK: the repository

  func channelFile(_ name: String) throws -> String {
    try String(contentsOfFile: repo.path + "/channels/\(name).yaml", encoding: .utf8)
  }

  /// Commits new contents of some files (nil removes the file).
  @discardableResult
  func commit(_ message: String, _ files: [String: String?]) throws -> String {
    for (rel, text) in files {
      if let text { try repo.write([rel: text]) } else { try repo.remove(rel) }
    }
    return try repo.commit(message)
  }

  /// A file of the status branch, parsed.
  func statusFile(_ rel: String, branch: String = "ytempire/status") throws -> YAMLNode {
    let text = try repo.git("show", "\(branch):\(rel)")
    let loaded = YAMLLoader.load(Array(text.utf8), file: rel)
    guard loaded.errors.isEmpty, let root = loaded.documents.first?.root else {
      throw E2EFailure("\(rel): \(loaded.errors)")
    }
    return root
  }

  // MARK: the sandbox

  /// An admin API call through curl: (HTTP status, parsed JSON body or nil).
  @discardableResult
  func admin(_ method: String, _ path: String, _ body: Any? = nil) async throws -> (Int, Any?) {
    var args = ["curl", "-sS", "-X", method, "-o", "-", "-w", "\n%{http_code}", sandbox.adminURL + path]
    if let body {
      let data = try JSONSerialization.data(withJSONObject: body, options: [.fragmentsAllowed])
      args += ["-H", "Content-Type: application/json", "--data-binary", String(decoding: data, as: UTF8.self)]
    }
    let argv = args
    let r = try await offload { try Processes.run(argv) }
    var lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false)
    let code = Int(lines.popLast() ?? "") ?? 0
    let text = lines.joined(separator: "\n")
    return (code, text.isEmpty ? nil : try? E2E.json(text))
  }

  func setFaults(_ spec: String, seed: Int = 1) async throws {
    let (code, body) = try await admin("PUT", "/faults", ["spec": spec, "seed": seed])
    guard code == 200 || code == 204 else { throw E2EFailure("PUT /faults \(spec): \(code) \(String(describing: body))") }
  }

  func clearFaults() async throws { try await admin("DELETE", "/faults") }

  /// The sandbox's YouTube playlists: id → (channelId, title).
  func playlists() async throws -> [String: (channel: String, title: String)] {
    let (code, body) = try await admin("GET", "/state/youtube/playlists")
    guard code == 200, let all = body as? [String: Any] else { throw E2EFailure("GET playlists: \(code)") }
    var out: [String: (String, String)] = [:]
    for (id, v) in all {
      let snippet = (v as? [String: Any])?["snippet"] as? [String: Any]
      out[id] = (snippet?["channelId"] as? String ?? "?", snippet?["title"] as? String ?? "?")
    }
    return out
  }

  /// Titles that occur more than once in one channel ("channel: title").
  func duplicatePlaylistTitles() async throws -> [String] {
    var seen: [String: Int] = [:]
    for (_, p) in try await playlists() { seen["\(p.channel): \(p.title)", default: 0] += 1 }
    return seen.filter { $0.value > 1 }.map(\.key).sorted()
  }

  func channelId(_ name: String) -> String {
    sandbox.seed.channels.first { $0.name == name }!.channelId
  }

  func description(ofChannel name: String) async throws -> String? {
    let (_, body) = try await admin("GET", "/state/youtube/channels/\(channelId(name))")
    let b = (body as? [String: Any])?["brandingSettings"] as? [String: Any]
    return (b?["channel"] as? [String: Any])?["description"] as? String
  }

  /// Calls of `"youtube PUT /youtube/v3/channels"`-style keys.
  func calls(_ key: String) -> Int { sandbox.callCounts[key] ?? 0 }
  static let channelsUpdate = "youtube PUT /youtube/v3/channels"
  static let playlistsInsert = "youtube POST /youtube/v3/playlists"
  static let playlistsDelete = "youtube DELETE /youtube/v3/playlists"
  static let playlistsUpdate = "youtube PUT /youtube/v3/playlists"

  /// Calls that change YouTube state.
  var youtubeWrites: Int {
    calls(Self.channelsUpdate) + calls(Self.playlistsInsert) + calls(Self.playlistsDelete) + calls(Self.playlistsUpdate)
  }
}

extension YAMLNode {
  /// Follows a path of mapping keys.
  subscript(path keys: String...) -> YAMLNode? {
    var n: YAMLNode? = self
    for k in keys { n = n?[k] }
    return n
  }

  /// The `status` of the condition of this type in a status file's `status.conditions`.
  func condition(_ type: String) -> (status: String, reason: String, message: String)? {
    guard let items = self[path: "status", "conditions"]?.sequenceItems else { return nil }
    for c in items where c["type"]?.scalarText == type {
      return (c["status"]?.scalarText ?? "", c["reason"]?.scalarText ?? "", c["message"]?.scalarText ?? "")
    }
    return nil
  }
}

/// Plan JSON helpers.
enum PlanJSON {
  static func actions(_ plan: [String: Any]) -> [[String: Any]] { plan["actions"] as? [[String: Any]] ?? [] }

  /// "youtube.channels.update"-style first call name of each action (deferred ones included).
  static func callNames(_ plan: [String: Any], driver: String? = nil) -> [String] {
    actions(plan).compactMap { pa in
      let a = pa["action"] as? [String: Any]
      if let driver, a?["driver"] as? String != driver { return nil }
      guard let c = (a?["calls"] as? [[String: Any]])?.first else { return "?" }
      return "\(c["service"] as? String ?? "?").\(c["operation"] as? String ?? "?")"
    }
  }

  static func resource(_ pa: [String: Any]) -> String {
    let r = (pa["action"] as? [String: Any])?["resource"]
    if let s = r as? String { return s }
    if let o = r as? [String: Any] { return "\(o["kind"] ?? "?")/\(o["name"] ?? "?")" }
    return "?"
  }

  static func changes(_ plan: [String: Any]) -> [[String: Any]] { plan["resources"] as? [[String: Any]] ?? [] }
}
