import Foundation
import Testing

@testable import EmpireModel

/// DESIGN A10 renames in the model: `renamedFrom` on a playlist entry and the annotations
/// `ytempire.io/renamed-from` / `ytempire.io/delete-nonempty`, each bad use a located error.
@Suite("Rename fields and annotations")
struct RenameValidationTests {
  static func report(_ yaml: String) -> ValidationReport {
    ManifestLoader.validate([ManifestSource(displayPath: "c.yaml", relativePath: "c.yaml", content: .bytes(Array(yaml.utf8)))])
  }

  static func channel(_ name: String, annotations: String = "", playlists: String) -> String {
    """
    apiVersion: ytempire.io/v1
    kind: Channel
    metadata:
      name: \(name)
    \(annotations.isEmpty ? "" : "  annotations: {\(annotations)}")
    spec:
      youtube: {channelId: UCPtYgjmUhBel31iEl2hpChY, credentials: yt}
      branding: {title: T}
      playlists:
    \(playlists)
    """
  }

  @Test func renamedFromIsKeptOnThePlaylist() throws {
    let r = Self.report(
      Self.channel(
        "c",
        playlists: """
            - {name: new-key, title: X, renamedFrom: old-key}
            - {name: other, title: Y}
          """))
    #expect(r.isValid, "\(r.diagnostics.map(\.rendered))")
    let c = try #require(r.resources.first?.channel)
    #expect(c.playlists.map(\.renamedFrom) == ["old-key", nil])
  }

  @Test func renamedFromMayNotNameAKeyStillDeclaredNorBeUsedTwice() throws {
    let yaml = Self.channel(
      "c",
      playlists: """
          - {name: a, title: X}
          - {name: b, title: Y, renamedFrom: a}
          - {name: c, title: Z, renamedFrom: gone}
          - {name: d, title: W, renamedFrom: gone}
          - {name: e, title: V, renamedFrom: Not A Name}
        """)
    let r = Self.report(yaml)
    #expect(!r.isValid)
    let line11 = yaml.components(separatedBy: "\n")[10]
    let column = line11.distance(from: line11.startIndex, to: try #require(line11.range(of: "renamedFrom: a")).upperBound)
    let rendered = r.diagnostics.map(\.rendered)
    let still = try #require(r.diagnostics.first { $0.code == "invalid-value" })
    #expect(still.file == "c.yaml" && still.line == 11 && still.column == column, "\(rendered)")
    #expect(still.message.contains("'a' names a playlist this channel still declares"), "\(rendered)")
    #expect(still.notes.first?.line == 10)
    let twice = try #require(r.diagnostics.first { $0.code == "duplicate-entry" })
    #expect(twice.line == 13 && twice.message.contains("renamedFrom 'gone'"), "\(rendered)")
    #expect(r.diagnostics.contains { $0.code == "invalid-name" && $0.line == 14 }, "\(rendered)")
  }

  @Test func theRenamedFromAnnotationNamesAGoneResourceOfItsKind() throws {
    let ok = Self.report(
      Self.channel(
        "new-name", annotations: "ytempire.io/renamed-from: old-name, ytempire.io/delete-nonempty: \"true\"",
        playlists: "      - {name: a, title: X}"))
    #expect(ok.isValid, "\(ok.diagnostics.map(\.rendered))")

    let both = Self.report(
      Self.channel("new-name", annotations: "ytempire.io/renamed-from: old-name", playlists: "      - {name: a, title: X}")
        + "\n---\n" + Self.channel("old-name", playlists: "      - {name: b, title: Y}"))
    let still = try #require(both.diagnostics.first { $0.code == "invalid-value" }, "\(both.diagnostics.map(\.rendered))")
    #expect(still.line == 4 && still.message.contains("Channel 'old-name' is still declared"))
    #expect(still.notes.first?.line == 15)

    let own = Self.report(Self.channel("c", annotations: "ytempire.io/renamed-from: c", playlists: "      - {name: a, title: X}"))
    #expect(own.diagnostics.map(\.code) == ["invalid-value"])
    #expect(own.diagnostics.first?.message.contains("names the resource itself") == true)
    let bad = Self.report(
      Self.channel(
        "c", annotations: "ytempire.io/renamed-from: Old_Name, ytempire.io/delete-nonempty: yes-please",
        playlists: "      - {name: a, title: X}"))
    #expect(Set(bad.diagnostics.map(\.code)) == ["invalid-name", "invalid-enum"], "\(bad.diagnostics.map(\.rendered))")
    #expect(bad.diagnostics.allSatisfy { $0.line == 5 })
  }
}
