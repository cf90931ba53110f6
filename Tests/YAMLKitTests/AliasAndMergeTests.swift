import Testing

@testable import YAMLKit

@Suite struct AliasAndMergeTests {
  @Test func aliasCopiesAnchoredNodeWithUseSiteMark() throws {
    let text = """
      base: &b
        x: 1
        y: [a, b]
      name: &n hello
      copy: *b
      again: *n
      list: [*n, *b]
      """
    let doc = try #require(root(text))
    let base = try #require(doc["base"])
    let copy = try #require(doc["copy"])
    #expect(keys(copy) == ["x", "y"])
    #expect(copy["x"]?.scalarText == "1")
    #expect(texts(copy["y"]) == ["a", "b"])
    // The alias node itself is located at the use site …
    #expect(copy.mark == mark(5, 7))
    #expect(copy.endMark == mark(5, 9))
    #expect(base.mark == mark(1, 7))
    // … its children keep the anchored node's locations.
    #expect(copy["x"]?.mark == mark(2, 6))
    #expect(doc["name"]?.scalarText == "hello")
    #expect(doc["name"]?.mark == mark(4, 7))
    #expect(doc["again"]?.scalarText == "hello")
    #expect(doc["again"]?.mark == mark(6, 8))
    let list = try #require(doc["list"]?.sequenceItems)
    #expect(list[0].scalarText == "hello")
    #expect(list[0].mark == mark(7, 8))
    #expect(keys(list[1]) == ["x", "y"])
    #expect(list[1].mark == mark(7, 12))
  }

  @Test func anchorsAreRedefinableAndScopedToTheDocument() throws {
    let result = load("a: &x 1\nb: *x\nc: &x 2\nd: *x\n---\ne: *x\n")
    let docs = result.documents
    #expect(docs.count == 2)
    #expect(docs[0].root?["b"]?.scalarText == "1")
    #expect(docs[0].root?["d"]?.scalarText == "2")
    #expect(result.errors.count == 1)
    #expect(result.errors.first?.code == .undefinedAlias)
    #expect(result.errors.first?.mark == mark(6, 4))
  }

  @Test func undefinedAliasIsReportedAndLoadingContinues() throws {
    let result = load("a: 1\nb: *missing\nc: 3\nd: [*other]\n")
    #expect(result.errors.count == 2)
    let first = try #require(result.errors.first)
    #expect(first.code == .undefinedAlias)
    #expect(first.mark == mark(2, 4))
    #expect(first.message == "alias '*missing' refers to an undefined anchor '&missing'")
    #expect(!first.isFatal)
    #expect(result.errors[1].code == .undefinedAlias)
    #expect(result.errors[1].mark == mark(4, 5))
    let doc = try #require(result.documents.first?.root)
    #expect(doc["c"]?.scalarText == "3")
    // The placeholder is an empty plain scalar at the alias site.
    #expect(doc["b"]?.scalarText == "")
    #expect(doc["b"]?.mark == mark(2, 4))
  }

  @Test func recursiveAliasIsRejected() throws {
    let result = load("a: &a\n  b: *a\n")
    #expect(result.errors.count == 1)
    #expect(result.errors.first?.code == .undefinedAlias)
    #expect(result.errors.first?.mark == mark(2, 6))
    #expect(result.errors.first?.message == "alias '*a' refers to the node that contains it (recursive aliases are not supported)")
  }

  @Test func singleMerge() throws {
    let text = """
      defaults: &d
        adapter: postgres
        host: localhost
        port: 5432
      dev:
        database: dev
        <<: *d
        host: dev.local
      """
    let doc = try #require(root(text))
    let dev = try #require(doc["dev"])
    // Merged keys go where `<<` was; the explicit `host` wins although it comes later.
    #expect(keys(dev) == ["database", "adapter", "port", "host"])
    #expect(dev["host"]?.scalarText == "dev.local")
    #expect(dev["host"]?.mark == mark(8, 9))
    #expect(dev["adapter"]?.scalarText == "postgres")
    #expect(dev["adapter"]?.mark == mark(2, 12))
    #expect(dev["port"]?.scalarText == "5432")
  }

  @Test func explicitKeyBeforeMergeAlsoWins() throws {
    let doc = try #require(root("base: &b {a: 1, b: 2}\nm:\n  a: mine\n  <<: *b\n"))
    #expect(keys(doc["m"]) == ["a", "b"])
    #expect(doc["m"]?["a"]?.scalarText == "mine")
    #expect(doc["m"]?["b"]?.scalarText == "2")
  }

  @Test func mergeListEarlierMapsWin() throws {
    let text = """
      one: &one {a: 1, b: 1}
      two: &two {b: 2, c: 2}
      three: &three {c: 3, d: 3}
      m:
        <<: [*one, *two, *three]
        d: own
      """
    let doc = try #require(root(text))
    let m = try #require(doc["m"])
    #expect(keys(m) == ["a", "b", "c", "d"])
    #expect(m["a"]?.scalarText == "1")
    #expect(m["b"]?.scalarText == "1")
    #expect(m["c"]?.scalarText == "2")
    #expect(m["d"]?.scalarText == "own")
    #expect(m["d"]?.mark == mark(6, 6))
  }

  @Test func mergeOfAnAliasedSequenceOfMappings() throws {
    let doc = try #require(root("maps: &maps [{a: 1}, {a: 2, b: 2}]\nm:\n  <<: *maps\n"))
    #expect(keys(doc["m"]) == ["a", "b"])
    #expect(doc["m"]?["a"]?.scalarText == "1")
    #expect(doc["m"]?["b"]?.scalarText == "2")
  }

  @Test func mergeWithInlineMappingAndTaggedKey() throws {
    let doc = try #require(root("a:\n  <<: {x: 1}\n  y: 2\nb:\n  !!merge <<: {z: 3}\n"))
    #expect(keys(doc["a"]) == ["x", "y"])
    #expect(keys(doc["b"]) == ["z"])
    // A quoted "<<" is an ordinary key.
    let quoted = try #require(root("'<<': {x: 1}\n"))
    #expect(keys(quoted) == ["<<"])
  }

  @Test func mergedKeysAreNotDuplicates() throws {
    let result = load("b: &b {k: 1}\nm:\n  k: 2\n  <<: [*b, *b]\n")
    #expect(result.errors.isEmpty)
    #expect(keys(result.documents.first?.root?["m"]) == ["k"])
    #expect(result.documents.first?.root?["m"]?["k"]?.scalarText == "2")
  }

  @Test func nestedMergeThroughAnchoredMergedMap() throws {
    let text = """
      base: &base {a: 1}
      mid: &mid
        <<: *base
        b: 2
      top:
        <<: *mid
        c: 3
      """
    let doc = try #require(root(text))
    #expect(keys(doc["top"]) == ["a", "b", "c"])
    #expect(doc["top"]?["a"]?.scalarText == "1")
  }

  @Test func invalidMergeValues() throws {
    let scalar = load("m:\n  <<: not-a-map\n  k: v\n")
    #expect(scalar.errors.count == 1)
    let error = try #require(scalar.errors.first)
    #expect(error.code == .invalidMerge)
    #expect(error.mark == mark(2, 7))
    #expect(error.message == "merge key '<<' takes a mapping or a sequence of mappings, found a scalar")
    #expect(keys(scalar.documents.first?.root?["m"]) == ["k"])

    let item = load("a: &a {x: 1}\nm:\n  <<: [*a, [1, 2], 3]\n")
    #expect(item.errors.map(\.code) == [.invalidMerge, .invalidMerge])
    #expect(item.errors.map(\.mark) == [mark(3, 12), mark(3, 20)])
    #expect(item.errors[0].message == "merge key '<<' takes a mapping or a sequence of mappings, but this sequence item is a sequence")
    #expect(keys(item.documents.first?.root?["m"]) == ["x"])

    let null = load("m:\n  <<:\n")
    #expect(null.errors.map(\.code) == [.invalidMerge])
  }

  @Test func undefinedAliasInMergeReportsOnlyTheAlias() throws {
    let result = load("m:\n  <<: *nope\n  k: v\n")
    #expect(result.errors.map(\.code) == [.undefinedAlias])
    #expect(keys(result.documents.first?.root?["m"]) == ["k"])
  }

  @Test func twoMergeKeysAreDuplicates() throws {
    let result = load("a: &a {x: 1}\nb: &b {y: 2}\nm:\n  <<: *a\n  <<: *b\n")
    #expect(result.errors.count == 1)
    #expect(result.errors.first?.code == .duplicateKey)
    #expect(result.errors.first?.mark == mark(5, 3))
    #expect(result.errors.first?.notes.first?.mark == mark(4, 3))
    #expect(keys(result.documents.first?.root?["m"]) == ["x"])
  }
}
