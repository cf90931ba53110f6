import Foundation

/// A temporary directory removed when released (also when a test fails).
public final class TemporaryDirectory: Sendable {
  public let path: String

  public init(_ label: String = "ytempire-test") throws {
    let base = FileManager.default.temporaryDirectory.path
    path = base + "/\(label)-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  }

  public func sub(_ name: String) -> String { path + "/" + name }

  deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// A git repository made with the git CLI, for tests.
public struct GitFixture: Sendable {
  public let path: String

  /// Environment that makes commits reproducible and ignores the user's configuration.
  public static let env: [String: String] = [
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_TERMINAL_PROMPT": "0",
  ]

  /// `git init` (non-bare, branch `main`) at `path`.
  public static func create(at path: String, bare: Bool = false) throws -> GitFixture {
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    var args = ["git", "init", "-q", "-b", "main"]
    if bare { args.append("--bare") }
    args.append(path)
    try Processes.run(args, env: env)
    return GitFixture(path: path)
  }

  public init(path: String) { self.path = path }

  @discardableResult
  public func git(_ args: String..., env extra: [String: String] = [:]) throws -> String {
    try git(args, env: extra)
  }

  @discardableResult
  public func git(_ args: [String], env extra: [String: String] = [:]) throws -> String {
    var e = GitFixture.env
    for (k, v) in extra { e[k] = v }
    return try Processes.run(["git", "-C", path] + args, env: e).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
  }

  public func write(_ files: [String: String]) throws {
    for (rel, text) in files {
      let url = URL(fileURLWithPath: path + "/" + rel)
      try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
      try Data(text.utf8).write(to: url)
    }
  }

  public func remove(_ rel: String) throws { try FileManager.default.removeItem(atPath: path + "/" + rel) }

  /// Writes files, stages everything and commits; returns the new commit id.
  @discardableResult
  public func commit(_ message: String, files: [String: String] = [:], extraArgs: [String] = [], env extra: [String: String] = [:]) throws
    -> String
  {
    try write(files)
    try git("add", "-A")
    try git(["commit", "-q", "--allow-empty", "-m", message] + extraArgs, env: extra)
    return try git("rev-parse", "HEAD")
  }

  public func head(_ ref: String = "HEAD") throws -> String { try git("rev-parse", ref) }
}
