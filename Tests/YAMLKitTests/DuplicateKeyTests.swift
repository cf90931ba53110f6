import Testing

@testable import YAMLKit

@Suite struct DuplicateKeyTests {
  @Test func duplicateKeyIsLocatedWithNote() throws {
    let result = load("name: first\nother: 1\nname: second\n")
    #expect(result.errors.count == 1)
    let error = try #require(result.errors.first)
    #expect(error.code == .duplicateKey)
    #expect(error.message == "duplicate key 'name' in mapping")
    #expect(error.mark == mark(3, 1))
    #expect(error.notes == [YAMLNote(message: "'name' first defined here", mark: mark(1, 1))])
    #expect(!error.isFatal)
    // The first value is kept and loading continued.
    let doc = try #require(result.documents.first?.root)
    #expect(keys(doc) == ["name", "other"])
    #expect(doc["name"]?.scalarText == "first")
  }

  @Test func quotedAndPlainKeysAreTheSameKey() throws {
    let result = load("a: 1\n\"a\": 2\n'a': 3\n")
    #expect(result.errors.map(\.code) == [.duplicateKey, .duplicateKey])
    #expect(result.errors.map(\.mark) == [mark(2, 1), mark(3, 1)])
    #expect(result.errors.allSatisfy { $0.notes.first?.mark == mark(1, 1) })
  }

  @Test func multipleDuplicatesAreAllCollected() throws {
    let text = """
      a: 1
      b:
        x: 1
        x: 2
      a: 3
      c: [1, {k: 1, k: 2}]
      ---
      z: 1
      z: 2
      """
    let result = load(text)
    #expect(result.errors.map(\.code) == [.duplicateKey, .duplicateKey, .duplicateKey, .duplicateKey])
    #expect(result.errors.map(\.mark) == [mark(4, 3), mark(5, 1), mark(6, 15), mark(9, 1)])
    #expect(result.errors.map { $0.notes.first?.mark } == [mark(3, 3), mark(1, 1), mark(6, 9), mark(8, 1)])
    #expect(
      result.errors.map(\.message) == [
        "duplicate key 'x' in mapping", "duplicate key 'a' in mapping",
        "duplicate key 'k' in mapping", "duplicate key 'z' in mapping",
      ])
    #expect(result.documents.count == 2)
    // The duplicate's value (even a collection) is dropped.
    #expect(keys(result.documents[0].root) == ["a", "b", "c"])
    #expect(result.documents[0].root?["a"]?.scalarText == "1")
  }

  @Test func duplicateWithCollectionValueIsDropped() throws {
    let result = load("k: 1\nk:\n  deep: [1, 2]\nafter: 2\n")
    #expect(result.errors.map(\.code) == [.duplicateKey])
    #expect(keys(result.documents.first?.root) == ["k", "after"])
    #expect(result.documents.first?.root?["k"]?.scalarText == "1")
  }

  @Test func largeMappingsUseTheHashIndex() throws {
    var text = ""
    for i in 0..<40 { text += "key\(i): \(i)\n" }
    text += "key3: again\nkey39: again\nkey40: new\n"
    let result = load(text)
    #expect(result.errors.map(\.mark) == [mark(41, 1), mark(42, 1)])
    #expect(result.errors.map { $0.notes.first?.mark } == [mark(4, 1), mark(40, 1)])
    #expect(result.errors[0].message == "duplicate key 'key3' in mapping")
    #expect(keys(result.documents.first?.root).count == 41)
    // Duplicate exactly at the boundary of the linear scan (17th key).
    var boundary = ""
    for i in 0..<16 { boundary += "k\(i): 1\n" }
    boundary += "k0: dup\n"
    #expect(load(boundary).errors.map(\.mark) == [mark(17, 1)])
  }

  @Test func keysAreComparedByBytesNotCanonicalEquivalence() throws {
    // "é" precomposed (U+00E9) and decomposed (e + U+0301) are different YAML keys.
    let result = load("\u{e9}: 1\ne\u{301}: 2\n")
    #expect(result.errors.isEmpty)
    #expect(result.documents.first?.root?.mappingPairs?.count == 2)
    var big = ""
    for i in 0..<30 { big += "k\(i): \(i)\n" }
    big += "\u{e9}: 1\ne\u{301}: 2\n\u{e9}: 3\n"
    let bigResult = load(big)
    #expect(bigResult.errors.map(\.mark) == [mark(33, 1)])
  }

  @Test func veryLargeMappingWithLateDuplicate() throws {
    var text = ""
    for i in 0..<5_000 { text += "key-\(i): \(i)\n" }
    text += "key-1234: again\n"
    let result = load(text)
    #expect(result.errors.map(\.mark) == [mark(5_001, 1)])
    #expect(result.errors.first?.notes.first?.mark == mark(1_235, 1))
    #expect(result.documents.first?.root?.mappingPairs?.count == 5_000)
  }

  @Test func longKeyTextIsShortenedInMessage() throws {
    let long = String(repeating: "x", count: 100)
    let result = load("\(long): 1\n\(long): 2\n")
    #expect(result.errors.first?.message == "duplicate key '\(String(repeating: "x", count: 60))…' in mapping")
    let multiline = load("\"a\\nb\": 1\n\"a\\nb\": 2\n")
    #expect(multiline.errors.first?.message == "duplicate key 'a\\nb' in mapping")
  }

  @Test func complexKeysAreErrors() throws {
    let result = load("? [a, b]\n: 1\n{x: 1}: 2\nok: 3\n")
    #expect(result.errors.map(\.code) == [.complexKey, .complexKey])
    #expect(result.errors.map(\.mark) == [mark(1, 3), mark(3, 1)])
    #expect(result.errors[0].message == "mapping key must be a scalar, found a sequence")
    #expect(result.errors[1].message == "mapping key must be a scalar, found a mapping")
    #expect(result.documents.first?.root?["ok"]?.scalarText == "3")
  }
}
