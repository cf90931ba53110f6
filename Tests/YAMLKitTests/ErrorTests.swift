import Testing

@testable import YAMLKit

@Suite struct ErrorTests {
  @Test func nulByteIsBinaryContent() throws {
    let result = loadBytes(Array("a: 1\nbin: x".utf8) + [0] + Array("y\n".utf8))
    #expect(result.errors.count == 1)
    let error = try #require(result.errors.first)
    #expect(error.code == .binaryContent)
    #expect(error.message == "file contains a NUL byte; binary content is not YAML")
    #expect(error.mark == mark(2, 7))
    #expect(result.documents.isEmpty)
  }

  @Test func nulByteLocationAfterBOMAndCRLF() throws {
    let result = loadBytes([0xEF, 0xBB, 0xBF] + Array("a: é\r\nb: ".utf8) + [0])
    #expect(result.errors.map(\.code) == [.binaryContent])
    #expect(result.errors.first?.mark == mark(2, 4))
  }

  @Test func controlCharacterIsBinaryContent() throws {
    let result = loadBytes(Array("a: 1\nb: x".utf8) + [0x07] + Array("\n".utf8))
    #expect(result.errors.map(\.code) == [.binaryContent])
    #expect(result.errors.first?.message == "file contains the control character U+0007; binary content is not YAML")
    #expect(result.errors.first?.mark == mark(2, 5))
  }

  @Test func invalidUTF8() throws {
    let result = loadBytes(Array("ok: 1\nbad: ".utf8) + [0xC3, 0x28] + Array("\n".utf8))
    #expect(result.errors.count == 1)
    let error = try #require(result.errors.first)
    #expect(error.code == .invalidEncoding)
    #expect(error.message == "invalid UTF-8: invalid trailing UTF-8 octet (byte 0x28)")
    // Points at the lead byte 0xC3.
    #expect(error.mark == mark(2, 6))
  }

  @Test func invalidLeadingOctetAndTruncatedSequence() throws {
    let leading = loadBytes(Array("a: ".utf8) + [0xFF] + Array("\n".utf8))
    #expect(leading.errors.map(\.code) == [.invalidEncoding])
    #expect(leading.errors.first?.message == "invalid UTF-8: invalid leading UTF-8 octet (byte 0xFF)")
    #expect(leading.errors.first?.mark == mark(1, 4))
    let truncated = loadBytes(Array("a: b\nc: ".utf8) + [0xE2, 0x82])
    #expect(truncated.errors.map(\.code) == [.invalidEncoding])
    #expect(truncated.errors.first?.message == "invalid UTF-8: incomplete UTF-8 octet sequence")
    #expect(truncated.errors.first?.mark == mark(2, 4))
  }

  @Test func utf16IsRejected() throws {
    let result = loadBytes([0xFF, 0xFE] + Array("a".utf8) + [0])
    #expect(result.errors.map(\.code) == [.invalidEncoding])
    #expect(result.errors.first?.message == "file starts with a UTF-16 byte order mark; only UTF-8 is supported")
  }

  @Test func tabIndentation() throws {
    let result = load("a:\n\tb: 1\n")
    #expect(result.errors.count == 1)
    let error = try #require(result.errors.first)
    #expect(error.code == .syntax)
    #expect(error.mark == mark(2, 1))
    #expect(
      error.message
        == "found a tab character that cannot start any token (tabs cannot be used for indentation in YAML) (while scanning for the next token)"
    )
    #expect(error.notes.isEmpty)
    #expect(error.isFatal)
  }

  @Test func tabAfterPlainScalar() throws {
    // libyaml 0.2.5 reports a tab that follows a plain scalar differently.
    let result = load("a:\n  b: 1\n\tc: 2\n")
    #expect(result.errors.count == 1)
    let error = try #require(result.errors.first)
    #expect(error.code == .syntax)
    #expect(error.mark == mark(3, 1))
    #expect(error.message == "found a tab character that violates indentation (while scanning a plain scalar)")
    #expect(error.notes == [YAMLNote(message: "while scanning a plain scalar started here", mark: mark(2, 6))])
  }

  @Test func reservedIndicatorIsNamed() throws {
    let result = load("a: 1\nb: @x\n")
    #expect(result.errors.first?.code == .syntax)
    #expect(result.errors.first?.mark == mark(2, 4))
    #expect(result.errors.first?.message == "found character '@' that cannot start any token (while scanning for the next token)")
  }

  @Test func unclosedFlowSequence() throws {
    let result = load("a: [1, 2\nb: 3\n")
    #expect(result.errors.count == 1)
    let error = try #require(result.errors.first)
    #expect(error.code == .syntax)
    #expect(error.mark == mark(2, 2))
    #expect(error.message == "did not find expected ',' or ']' (while parsing a flow sequence)")
    #expect(error.notes == [YAMLNote(message: "while parsing a flow sequence started here", mark: mark(1, 4))])
  }

  @Test func mappingValueInPlainScalar() throws {
    let result = load("ok: 1\nkey: value: x\n")
    #expect(result.errors.count == 1)
    let error = try #require(result.errors.first)
    #expect(error.code == .syntax)
    #expect(error.message == "mapping values are not allowed in this context")
    #expect(error.mark == mark(2, 11))
    #expect(error.description == "test.yaml:2:11: error: mapping values are not allowed in this context [syntax]")
  }

  @Test func badIndentation() throws {
    let result = load("a:\n  b: 1\n c: 2\n")
    let error = try #require(result.errors.first)
    #expect(error.code == .syntax)
    #expect(error.mark == mark(3, 2))
    #expect(error.message == "did not find expected key (while parsing a block mapping)")
    #expect(error.notes.first?.mark == mark(1, 1))
  }

  @Test func documentsBeforeASyntaxErrorAreKept() throws {
    let result = load("a: 1\n---\nb: 2\n---\nc: [\n")
    #expect(result.documents.count == 2)
    #expect(result.documents[1].root?["b"]?.scalarText == "2")
    #expect(result.errors.map(\.code) == [.syntax])
    #expect(result.errors.first?.mark.line == 6)
  }

  @Test func errorsAreCollectedBeforeAFatalOne() throws {
    let result = load("a: 1\na: 2\nb: *nope\nc: [\n")
    #expect(result.errors.map(\.code) == [.duplicateKey, .undefinedAlias, .syntax])
    #expect(result.errors.map(\.isFatal) == [false, false, true])
  }
}
