import Testing

@testable import YAMLKit

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif

@Suite struct LimitTests {
  static func billionLaughs(levels: Int = 9, width: Int = 10) -> String {
    var text = "a0: &a0 \"lol\"\n"
    for level in 1...levels {
      let refs = Array(repeating: "*a\(level - 1)", count: width).joined(separator: ", ")
      text += "a\(level): &a\(level) [\(refs)]\n"
    }
    return text
  }

  @Test func billionLaughsFailsFastWithAliasLimit() throws {
    let text = Self.billionLaughs()
    var result = YAMLLoadResult(documents: [], errors: [])
    let seconds = elapsedSeconds { result = load(text) }
    #expect(seconds < 1.0)
    #expect(result.errors.count == 1)
    let error = try #require(result.errors.first)
    #expect(error.code == .aliasLimit)
    #expect(error.isFatal)
    #expect(error.message == "document expands more than 100000 nodes through aliases (billion-laughs protection)")
    // a1…a4 cost 10 + 110 + 1110 + 11110 nodes; a4 has 11111 nodes, so the 8th alias in a5 crosses 100000.
    #expect(error.mark == mark(6, 10 + 7 * 5))
    #expect(result.documents.isEmpty)
  }

  @Test func aliasExpansionWithinTheLimitIsFine() throws {
    let result = load(Self.billionLaughs(levels: 3))
    #expect(result.errors.isEmpty)
    let a3 = try #require(result.documents.first?.root?["a3"]?.sequenceItems)
    #expect(a3.count == 10)
    #expect(a3[9].sequenceItems?[9].sequenceItems?[9].scalarText == "lol")
    // A smaller limit makes the same document fail.
    var limits = YAMLLimits()
    limits.maxAliasExpansion = 100
    let limited = load(Self.billionLaughs(levels: 3), limits: limits)
    #expect(limited.errors.map(\.code) == [.aliasLimit])
    #expect(limited.errors.first?.message == "document expands more than 100 nodes through aliases (billion-laughs protection)")
  }

  @Test func mergeKeysCountTowardsExpansion() throws {
    var limits = YAMLLimits()
    limits.maxAliasExpansion = 25
    // Each alias costs 7 nodes (map + 3 pairs); each merge inserts 3 pairs (6 nodes):
    // m1 → 13, then m2's alias → 20 and its merge → 26, reported at m2's mapping.
    let text = "b: &b {x: 1, y: 2, z: 3}\nm1: {<<: *b}\nm2: {<<: *b}\nm3: {<<: *b}\n"
    let result = load(text, limits: limits)
    #expect(result.errors.map(\.code) == [.aliasLimit])
    #expect(result.errors.first?.mark == mark(3, 5))
    #expect(
      result.errors.first?.message == "document expands more than 25 nodes through aliases and merge keys (billion-laughs protection)")
  }

  @Test func deepFlowNestingFailsFast() throws {
    let text = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
    var result = YAMLLoadResult(documents: [], errors: [])
    let seconds = elapsedSeconds { result = load(text) }
    #expect(seconds < 1.0)
    #expect(result.errors.count == 1)
    let error = try #require(result.errors.first)
    #expect(error.code == .depthLimit)
    #expect(error.message == "collections are nested more than 128 levels deep")
    #expect(error.mark == mark(1, 129))
    #expect(result.documents.isEmpty)
  }

  @Test func deepFlowMappingNestingFails() throws {
    let text = String(repeating: "{a: ", count: 10_000) + "1" + String(repeating: "}", count: 10_000)
    let result = load(text)
    #expect(result.errors.map(\.code) == [.depthLimit])
    #expect(result.errors.first?.mark == mark(1, 128 * 4 + 1))
  }

  @Test func deepBlockSequenceNestingFailsFast() throws {
    // "- - - … x": 10,000 nested block sequences on one line.
    let text = String(repeating: "- ", count: 10_000) + "x\n"
    var result = YAMLLoadResult(documents: [], errors: [])
    let seconds = elapsedSeconds { result = load(text) }
    #expect(seconds < 1.0)
    #expect(result.errors.map(\.code) == [.depthLimit])
    #expect(result.errors.first?.mark == mark(1, 2 * 128 + 1))
  }

  @Test func deepBlockMappingNestingFails() throws {
    var text = ""
    for depth in 0..<1_000 { text += String(repeating: " ", count: depth) + "k\(depth):\n" }
    text += String(repeating: " ", count: 1_000) + "leaf\n"
    let result = load(text)
    #expect(result.errors.map(\.code) == [.depthLimit])
    // The 129th mapping starts with its first key, on line 129.
    #expect(result.errors.first?.mark == mark(129, 129))
  }

  @Test func depthLimitBoundary() throws {
    let ok = String(repeating: "[", count: 128) + String(repeating: "]", count: 128)
    #expect(load(ok).errors.isEmpty)
    let tooDeep = String(repeating: "[", count: 129) + String(repeating: "]", count: 129)
    #expect(load(tooDeep).errors.map(\.code) == [.depthLimit])
  }

  @Test func aliasesCannotBuildDeepTrees() throws {
    var limits = YAMLLimits()
    limits.maxDepth = 5
    // Each level wraps the previous anchor once more: a4 has height 5, and inside m it would be 6 deep.
    let text = "a0: &a0 [x]\na1: &a1 [*a0]\na2: &a2 [*a1]\na3: &a3 [*a2]\nm: *a3\nn: [*a3]\n"
    let result = load(text, limits: limits)
    #expect(result.errors.map(\.code) == [.depthLimit])
    #expect(result.errors.first?.mark == mark(6, 5))
    #expect(result.errors.first?.message == "alias '*a3' nests collections more than 5 levels deep")
  }

  @Test func fileSizeLimitOnBytes() throws {
    var limits = YAMLLimits()
    limits.maxFileBytes = 10
    let result = load("key: value that is too long\n", limits: limits)
    #expect(result.errors.count == 1)
    let error = try #require(result.errors.first)
    #expect(error.code == .fileTooLarge)
    #expect(error.message == "file is 28 bytes, which exceeds the limit of 10 bytes")
    #expect(error.mark == mark(1, 1))
    #expect(load("k: v\n", limits: limits).errors.isEmpty)
  }

  @Test func documentSizeLimit() throws {
    var limits = YAMLLimits()
    limits.maxDocumentBytes = 20
    let text = "a: 1\n---\nlong: \(String(repeating: "x", count: 40))\n---\nb: 2\n"
    let result = load(text, limits: limits)
    #expect(result.errors.map(\.code) == [.documentTooLarge])
    #expect(result.errors.first?.mark == mark(2, 1))
    #expect(result.errors.first?.message == "document 2 is larger than the limit of 20 bytes")
    #expect(result.documents.count == 1)
    #expect(result.documents.first?.root?["a"]?.scalarText == "1")
  }

  @Test func documentSizeIgnoresCommentsBetweenDocuments() throws {
    var limits = YAMLLimits()
    limits.maxDocumentBytes = 20
    let text = "a: 1\n" + String(repeating: "# comment line\n", count: 10) + "---\nb: 2\n"
    let result = load(text, limits: limits)
    #expect(result.errors.isEmpty)
    #expect(result.documents.count == 2)
  }

  @Test func nodeLimit() throws {
    var limits = YAMLLimits()
    limits.maxNodes = 5
    let result = load("[1, 2, 3]\n---\n[4, 5]\n", limits: limits)
    #expect(result.errors.map(\.code) == [.nodeLimit])
    #expect(result.errors.first?.mark == mark(3, 2))
    #expect(result.errors.first?.message == "file has more than 5 nodes")
    #expect(result.documents.count == 1)
  }
}

@Suite struct FileLoadingTests {
  static func temporaryDirectory() -> String {
    var template = Array("/tmp/yamlkit-test-XXXXXX".utf8CString)
    let dir = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    return String(cString: dir!)
  }

  static func writeFile(_ bytes: [UInt8], to path: String) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    precondition(fd >= 0)
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
  }

  @Test func twentyMegabyteFileFailsBeforeReading() throws {
    let dir = Self.temporaryDirectory()
    let path = dir + "/big.yaml"
    defer {
      unlink(path)
      rmdir(dir)
    }
    // A real 20 MiB file of YAML text.
    let line = Array("key: \(String(repeating: "v", count: 1018))\n".utf8)
    #expect(line.count == 1024)
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    #expect(fd >= 0)
    var chunk: [UInt8] = []
    for _ in 0..<1024 { chunk += line }
    for _ in 0..<20 { _ = chunk.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } }
    close(fd)

    var result = YAMLLoadResult(documents: [], errors: [])
    let seconds = elapsedSeconds { result = YAMLLoader.load(contentsOf: path, displayName: "big.yaml") }
    #expect(seconds < 0.5)
    #expect(result.documents.isEmpty)
    #expect(result.errors.count == 1)
    let error = try #require(result.errors.first)
    #expect(error.code == .fileTooLarge)
    #expect(error.message == "file is 20971520 bytes (20.0 MiB), which exceeds the limit of 8388608 bytes (8.0 MiB)")
    #expect(error.mark == SourceMark(file: "big.yaml", line: 1, column: 1))
  }

  @Test func smallLimitOnFileAndNormalLoad() throws {
    let dir = Self.temporaryDirectory()
    let path = dir + "/small.yaml"
    defer {
      unlink(path)
      rmdir(dir)
    }
    Self.writeFile(Array("a: 1\nb: [x, y]\n".utf8), to: path)
    let ok = YAMLLoader.load(contentsOf: path, displayName: "repo/small.yaml")
    #expect(ok.errors.isEmpty)
    #expect(ok.documents.first?.root?["b"]?.sequenceItems?[1].mark == SourceMark(file: "repo/small.yaml", line: 2, column: 8))
    var limits = YAMLLimits()
    limits.maxFileBytes = 14
    let tooBig = YAMLLoader.load(contentsOf: path, displayName: "repo/small.yaml", limits: limits)
    #expect(tooBig.errors.map(\.code) == [.fileTooLarge])
    #expect(tooBig.errors.first?.message == "file is 15 bytes, which exceeds the limit of 14 bytes")
  }

  @Test func devicesAndFIFOsAreRefusedWithoutReading() throws {
    // /dev/zero never ends and a FIFO without a writer blocks open(2): neither is read (issue 11).
    var result = YAMLLoadResult(documents: [], errors: [])
    let seconds = elapsedSeconds { result = YAMLLoader.load(contentsOf: "/dev/zero", displayName: "zero.yaml") }
    #expect(seconds < 30)
    #expect(result.errors.map(\.code) == [.readError])
    #expect(result.errors.first?.message == "cannot read file: it is a device; only regular files are read")
    let fifo = "/tmp/yamlkit-fifo-\(getpid())-\(Int.random(in: 0..<1_000_000_000))"
    try #require(mkfifo(fifo, 0o600) == 0)
    defer { unlink(fifo) }
    let fromFIFO = YAMLLoader.load(contentsOf: fifo, displayName: "fifo.yaml")
    #expect(fromFIFO.errors.first?.message == "cannot read file: it is a FIFO; only regular files are read")
    #expect(fromFIFO.errors.first?.mark.line == 1)
  }

  @Test func unreadablePaths() throws {
    let missing = YAMLLoader.load(contentsOf: "/nonexistent/dir/x.yaml", displayName: "x.yaml")
    #expect(missing.errors.map(\.code) == [.readError])
    #expect(missing.errors.first?.message == "cannot open file: No such file or directory")
    let directory = YAMLLoader.load(contentsOf: "/tmp", displayName: "tmp")
    #expect(directory.errors.map(\.code) == [.readError])
    #expect(directory.errors.first?.message == "cannot read file: it is a directory")
  }

  @Test func emptyFile() throws {
    let dir = Self.temporaryDirectory()
    let path = dir + "/empty.yaml"
    defer {
      unlink(path)
      rmdir(dir)
    }
    Self.writeFile([], to: path)
    let result = YAMLLoader.load(contentsOf: path, displayName: "empty.yaml")
    #expect(result.errors.isEmpty)
    #expect(result.documents.isEmpty)
  }
}
