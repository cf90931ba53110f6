import DriverKit

/// Playlist renames (DESIGN A10 "Identity and renames"). A desired playlist key that owns no
/// playlist takes over the owned playlist of a key that is no longer desired — the one its
/// `renamedFrom` names, or else one with exactly its title — so a rename in git re-keys the
/// playlist (same id, same URL, its videos kept) instead of deleting it and creating another.
enum PlaylistRenames {
  /// new key → old key. `want`: desired playlists by key; `have`: owned playlists by key.
  static func pairs(want: [String: JSONValue], have: [String: JSONValue]) -> [String: String] {
    let gone = have.keys.filter { want[$0] == nil }.sorted()
    let fresh = want.keys.filter { have[$0] == nil }.sorted()
    var out: [String: String] = [:]
    var taken = Set<String>()
    // `renamedFrom` first: it says which, whatever the titles.
    for key in fresh {
      guard let from = want[key]?["renamedFrom"]?.string, gone.contains(from), !taken.contains(from) else { continue }
      out[key] = from
      taken.insert(from)
    }
    for key in fresh where out[key] == nil {
      guard let title = want[key]?["title"]?.string,
        let from = gone.first(where: { !taken.contains($0) && have[$0]?["title"]?.string == title })
      else { continue }
      out[key] = from
      taken.insert(from)
    }
    return out
  }

  /// A desired playlist without `renamedFrom` (which names a key, not a field of the playlist).
  static func fields(_ w: JSONValue) -> JSONValue {
    guard var o = w.object, o["renamedFrom"] != nil else { return w }
    o["renamedFrom"] = nil
    return .object(o)
  }
}
