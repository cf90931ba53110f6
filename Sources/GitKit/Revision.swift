/// What a source was read at: the reference as the user named it and the commit it
/// resolved to. Rendered Flux-style: `main@sha1:<40 hex>`, `v1.2@sha1:…`, or `sha1:…` for
/// a bare commit id.
public struct Revision: Hashable, Sendable, CustomStringConvertible, Codable {
  /// Short name shown to people: a branch or tag name, a full `refs/…` name for other
  /// references, or nil when a commit id was asked for.
  public var name: String?
  /// The full reference the name resolved to (`refs/heads/main`), nil for a commit id.
  public var reference: String?
  public var commit: String

  public init(name: String?, reference: String?, commit: String) {
    self.name = name
    self.reference = reference
    self.commit = commit
  }

  public var description: String {
    if let name { return "\(name)@sha1:\(commit)" }
    return "sha1:\(commit)"
  }

  public var shortCommit: String { String(commit.prefix(12)) }
}
