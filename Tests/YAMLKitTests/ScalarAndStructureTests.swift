import Testing

@testable import YAMLKit

@Suite struct ScalarAndStructureTests {
  @Test func scalarStylesAndMarks() throws {
    let text = """
      plain: hello world
      single: 'it''s'
      double: "a\\tb\\u00e9"
      literal: |
        line1
        line2
      folded: >
        a
        b
      empty:
      tilde: ~
      """
    let doc = try #require(root(text))
    #expect(keys(doc) == ["plain", "single", "double", "literal", "folded", "empty", "tilde"])
    let pairs = try #require(doc.mappingPairs)

    #expect(pairs[0].key.mark == mark(1, 1))
    #expect(pairs[0].key.endMark == mark(1, 6))
    #expect(pairs[0].value.scalarText == "hello world")
    #expect(pairs[0].value.scalarStyle == .plain)
    #expect(pairs[0].value.mark == mark(1, 8))
    #expect(pairs[0].value.endMark == mark(1, 19))

    #expect(pairs[1].value.scalarText == "it's")
    #expect(pairs[1].value.scalarStyle == .singleQuoted)
    #expect(pairs[1].value.mark == mark(2, 9))

    #expect(pairs[2].value.scalarText == "a\tb\u{e9}")
    #expect(pairs[2].value.scalarStyle == .doubleQuoted)
    #expect(pairs[2].value.mark == mark(3, 9))

    #expect(pairs[3].value.scalarText == "line1\nline2\n")
    #expect(pairs[3].value.scalarStyle == .literal)
    #expect(pairs[3].value.mark == mark(4, 10))
    #expect(pairs[3].key.mark == mark(4, 1))

    #expect(pairs[4].key.mark == mark(7, 1))
    #expect(pairs[4].value.scalarText == "a b\n")
    #expect(pairs[4].value.scalarStyle == .folded)

    #expect(pairs[5].key.mark == mark(10, 1))
    #expect(pairs[5].value.scalarText == "")
    #expect(pairs[5].value.isPlainNull)
    #expect(pairs[6].value.scalarText == "~")
    #expect(pairs[6].value.isPlainNull)
    #expect(!pairs[1].value.isPlainNull)
    #expect(doc.mark == mark(1, 1))
    #expect(doc.tag == nil)
  }

  @Test func isPlainNullVariants() throws {
    let doc = try #require(root("[null, Null, NULL, ~, 'null', !!null null, nil, NuLL, '']"))
    let items = try #require(doc.sequenceItems)
    #expect(items.map(\.isPlainNull) == [true, true, true, true, false, false, false, false, false])
  }

  @Test func tagsAsResolvedByLibyaml() throws {
    let doc = try #require(root("a: !!str 1\nb: ! x\nc: !local y\nd: plain\ne: !!map {k: v}\n"))
    #expect(doc["a"]?.tag == "tag:yaml.org,2002:str")
    #expect(doc["a"]?.scalarText == "1")
    #expect(doc["b"]?.tag == "!")
    #expect(doc["c"]?.tag == "!local")
    #expect(doc["d"]?.tag == nil)
    #expect(doc["e"]?.tag == "tag:yaml.org,2002:map")
    #expect(doc["e"]?["k"]?.scalarText == "v")
    // The node's mark includes its properties (tag).
    #expect(doc["a"]?.mark == mark(1, 4))
  }

  @Test func blockAndFlowCollections() throws {
    let text = """
      list:
        - one
        - {name: two, tags: [a, b]}
        - - nested
          - seq
      flow: {x: 1, y: [2, 3]}
      """
    let doc = try #require(root(text))
    let list = try #require(doc["list"]?.sequenceItems)
    #expect(list.count == 3)
    #expect(list[0].scalarText == "one")
    #expect(list[0].mark == mark(2, 5))
    #expect(list[1].mark == mark(3, 5))
    #expect(keys(list[1]) == ["name", "tags"])
    #expect(list[1]["name"]?.mark == mark(3, 12))
    #expect(texts(list[1]["tags"]) == ["a", "b"])
    #expect(list[1]["tags"]?.mark == mark(3, 23))
    #expect(list[1]["tags"]?.endMark == mark(3, 29))
    #expect(texts(list[2]) == ["nested", "seq"])
    #expect(list[2].mark == mark(4, 5))
    #expect(doc["list"]?.mark == mark(2, 3))
    let flow = try #require(doc["flow"])
    #expect(flow.mark == mark(6, 7))
    #expect(flow.endMark == mark(6, 24))
    #expect(flow["x"]?.scalarText == "1")
    #expect(texts(flow["y"]) == ["2", "3"])
    #expect(flow["y"]?.sequenceItems?[1].mark == mark(6, 21))
    #expect(doc["missing"] == nil)
    #expect(flow["x"]?["nope"] == nil)
  }

  @Test func quotedAndPlainKeysMatchInSubscript() throws {
    let doc = try #require(root("\"quoted\": 1\n'single': 2\nplain: 3\n"))
    #expect(doc["quoted"]?.scalarText == "1")
    #expect(doc["single"]?.scalarText == "2")
    #expect(doc["plain"]?.scalarText == "3")
    #expect(doc.pair(forKey: "quoted")?.key.scalarStyle == .doubleQuoted)
  }

  @Test func nonASCIIColumnsCountCharacters() throws {
    let doc = try #require(root("é€𝄞: value\nk: 'ü'\n"))
    let pairs = try #require(doc.mappingPairs)
    #expect(pairs[0].key.scalarText == "é€𝄞")
    // Three characters (2 + 3 + 4 bytes) before ": ": the value starts at column 6.
    #expect(pairs[0].value.mark == mark(1, 6))
    #expect(pairs[1].value.scalarText == "ü")
    #expect(pairs[1].value.endMark == mark(2, 7))
  }

  @Test func multiDocumentStream() throws {
    let text = """
      a: 1
      ---
      - x
      ---
      ---
      just a scalar
      ...
      --- ''
      """
    let result = load(text)
    #expect(result.errors.isEmpty)
    #expect(result.documents.count == 4 + 0 + 1)
    let docs = result.documents
    #expect(docs.map(\.index) == [0, 1, 2, 3, 4])
    #expect(docs.map(\.mark) == [mark(1, 1), mark(2, 1), mark(4, 1), mark(5, 1), mark(8, 1)])
    #expect(docs[0].root?["a"]?.scalarText == "1")
    #expect(texts(docs[1].root) == ["x"])
    #expect(docs[2].root == nil)
    #expect(docs[3].root?.scalarText == "just a scalar")
    #expect(docs[3].root?.mark == mark(6, 1))
    #expect(docs[4].root?.scalarText == "")
    #expect(docs[4].root?.scalarStyle == .singleQuoted)
  }

  @Test func emptyInputs() {
    #expect(load("").documents.isEmpty)
    #expect(load("").errors.isEmpty)
    let comments = load("# only a comment\n\n# another\n")
    #expect(comments.documents.isEmpty)
    #expect(comments.errors.isEmpty)
    let explicitEmpty = load("---\n# nothing\n")
    #expect(explicitEmpty.documents.count == 1)
    #expect(explicitEmpty.documents[0].root == nil)
    #expect(explicitEmpty.errors.isEmpty)
    // A tagged or anchored empty root is a node, not an empty document.
    let tagged = load("--- !!null\n")
    #expect(tagged.documents.count == 1)
    #expect(tagged.documents[0].root?.tag == "tag:yaml.org,2002:null")
  }

  @Test func byteOrderMarkIsStripped() throws {
    let bytes: [UInt8] = [0xEF, 0xBB, 0xBF] + Array("name: x\nother: y\n".utf8)
    let result = loadBytes(bytes)
    #expect(result.errors.isEmpty)
    let doc = try #require(result.documents.first?.root)
    let pairs = try #require(doc.mappingPairs)
    #expect(pairs[0].key.scalarText == "name")
    #expect(pairs[0].key.mark == mark(1, 1))
    #expect(pairs[0].value.mark == mark(1, 7))
    #expect(pairs[1].key.mark == mark(2, 1))
  }

  @Test func crlfLineEndings() throws {
    let text = "first: 1\r\nsecond:\r\n  - a\r\n  - |\r\n    block\r\n    text\r\nthird: 'x'\r\n"
    let doc = try #require(root(text))
    let pairs = try #require(doc.mappingPairs)
    #expect(pairs.map { $0.key.mark.line } == [1, 2, 7])
    #expect(pairs[0].value.mark == mark(1, 8))
    #expect(pairs[1].value.sequenceItems?[0].mark == mark(3, 5))
    #expect(pairs[1].value.sequenceItems?[1].mark == mark(4, 5))
    #expect(pairs[1].value.sequenceItems?[1].scalarText == "block\ntext\n")
    #expect(pairs[2].value.mark == mark(7, 8))
    #expect(pairs[2].value.scalarText == "x")
  }

  @Test func crlfErrorLocation() throws {
    // In flow context `d: 4` is a valid entry, so the error is at the end of input (line 5).
    let result = load("a: 1\r\nb: 2\r\nc: [1,\r\nd: 4\r\n")
    let error = try #require(result.errors.first)
    #expect(error.code == .syntax)
    #expect(error.mark == mark(5, 1))
    #expect(error.message == "did not find expected ',' or ']' (while parsing a flow sequence)")
    #expect(error.notes == [YAMLNote(message: "while parsing a flow sequence started here", mark: mark(3, 4))])
    let tab = load("a: 1\r\nb:\r\n\tc: 2\r\n")
    #expect(tab.errors.first?.mark == mark(3, 1))
  }

  @Test func descriptions() {
    #expect(SourceMark(file: "a/b.yaml", line: 3, column: 7).description == "a/b.yaml:3:7")
    #expect(SourceMark(file: "a", line: 2, column: 9) < SourceMark(file: "a", line: 3, column: 1))
    #expect(SourceMark(file: "a", line: 3, column: 1) < SourceMark(file: "a", line: 3, column: 2))
    #expect(SourceMark(file: "a", line: 9, column: 9) < SourceMark(file: "b", line: 1, column: 1))
    let error = YAMLError(
      code: .duplicateKey, message: "duplicate key 'a' in mapping", mark: mark(2, 1),
      notes: [YAMLNote(message: "'a' first defined here", mark: mark(1, 1))])
    #expect(
      error.description == "test.yaml:2:1: error: duplicate key 'a' in mapping [duplicate-key]\ntest.yaml:1:1: note: 'a' first defined here"
    )
    #expect(YAMLError.Code.aliasLimit.rawValue == "alias-limit")
  }
}
