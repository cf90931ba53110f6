import Foundation
import TestSupport
import Testing

@testable import GitKit

/// Manifest text for tests (a minimal valid Channel).
func channelYAML(_ name: String, title: String? = nil) -> String {
  """
  apiVersion: ytempire.io/v1
  kind: Channel
  metadata:
    name: \(name)
  spec:
    youtube: {channelId: UCabcdefghijklmnopqrstuv, credentials: yt-\(name)}
    branding: {title: \(title ?? name)}
    limits: {quotaShare: 0.1}

  """
}

/// A scratch area: a source repository and a state directory, removed on release.
final class Scratch: Sendable {
  let dir: TemporaryDirectory
  let repo: GitFixture
  var stateDir: String { dir.sub("state") }

  init() throws {
    dir = try TemporaryDirectory("gitkit")
    repo = try GitFixture.create(at: dir.sub("src"))
  }

  func mirror(_ url: String? = nil, auth: GitAuth = .none, timeouts: GitTimeouts = GitTimeouts()) throws -> GitMirror {
    try GitMirror(url: url ?? repo.path, stateDir: stateDir, auth: auth, timeouts: timeouts)
  }

  func source(
    _ url: String? = nil, ref: String? = nil, path: String = ".", allowRewrite: Bool = false,
    verify: SignatureVerification = .off, timeouts: GitTimeouts = GitTimeouts()
  ) throws -> GitSource {
    try GitSource(
      GitSourceConfig(
        url: url ?? repo.path, ref: ref, path: path, stateDir: stateDir, timeouts: timeouts,
        verify: verify, allowRewrite: allowRewrite))
  }
}

extension ManifestTree {
  var displayPaths: [String] { sources.map(\.displayPath).sorted() }
  func text(_ display: String) -> String? {
    guard let s = sources.first(where: { $0.displayPath == display }), case .bytes(let b) = s.content else { return nil }
    return String(decoding: b, as: UTF8.self)
  }
}
