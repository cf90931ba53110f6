/// Resource limits applied while loading. All limits produce a `YAMLError` with a
/// dedicated code; memory and time stay bounded by them.
public struct YAMLLimits: Sendable {
  /// Maximum file size in bytes; checked before parsing (and, for
  /// `load(contentsOf:)`, before reading the whole file).
  public var maxFileBytes: Int = 8 << 20
  /// Maximum size of one document, measured from the document start mark to the
  /// end mark of the latest event. libyaml's mark index counts characters, so for
  /// non-ASCII text this is a character count (always ≤ the byte count).
  public var maxDocumentBytes: Int = 4 << 20
  /// Maximum nesting of collections (a scalar at the top level has depth 0,
  /// `[x]` has depth 1). Aliases count with the depth of the anchored node.
  public var maxDepth: Int = 128
  /// Maximum number of nodes materialised through aliases and merge keys per document.
  public var maxAliasExpansion: Int = 100_000
  /// Maximum number of nodes (node events) per file.
  public var maxNodes: Int = 2_000_000

  public init(
    maxFileBytes: Int = 8 << 20,
    maxDocumentBytes: Int = 4 << 20,
    maxDepth: Int = 128,
    maxAliasExpansion: Int = 100_000,
    maxNodes: Int = 2_000_000
  ) {
    self.maxFileBytes = maxFileBytes
    self.maxDocumentBytes = maxDocumentBytes
    self.maxDepth = maxDepth
    self.maxAliasExpansion = maxAliasExpansion
    self.maxNodes = maxNodes
  }

  public static let `default` = YAMLLimits()
}

/// A secondary location attached to an error ("first defined here").
public struct YAMLNote: Sendable, Hashable, CustomStringConvertible {
  public var message: String
  public var mark: SourceMark

  public init(message: String, mark: SourceMark) {
    self.message = message
    self.mark = mark
  }

  /// `file:line:col: note: message`
  public var description: String { "\(mark): note: \(message)" }
}

public struct YAMLError: Error, Sendable, CustomStringConvertible {
  public enum Code: String, Sendable {
    case syntax
    case aliasLimit = "alias-limit"
    case depthLimit = "depth-limit"
    case documentTooLarge = "document-too-large"
    case fileTooLarge = "file-too-large"
    case duplicateKey = "duplicate-key"
    case invalidEncoding = "invalid-encoding"
    case binaryContent = "binary-content"
    case undefinedAlias = "undefined-alias"
    case invalidMerge = "invalid-merge"
    case nodeLimit = "node-limit"
    case complexKey = "complex-key"
    /// The file could not be opened or read (only from `load(contentsOf:)`).
    case readError = "read-error"
  }

  public var code: Code
  public var message: String
  public var mark: SourceMark
  public var notes: [YAMLNote]

  public init(code: Code, message: String, mark: SourceMark, notes: [YAMLNote] = []) {
    self.code = code
    self.message = message
    self.mark = mark
    self.notes = notes
  }

  /// True for errors after which the loader stopped parsing the file
  /// (everything except duplicate keys, complex keys, undefined aliases and invalid merges).
  public var isFatal: Bool {
    switch code {
    case .duplicateKey, .complexKey, .undefinedAlias, .invalidMerge: return false
    default: return true
    }
  }

  /// `file:line:col: error: message [code]`, followed by one line per note.
  public var description: String {
    var s = "\(mark): error: \(message) [\(code.rawValue)]"
    for note in notes { s += "\n\(note.description)" }
    return s
  }
}

public struct YAMLLoadResult: Sendable {
  /// Documents completed before any fatal error (a document interrupted by a fatal error is dropped).
  public var documents: [YAMLDocument]
  /// All errors in the order they were found. Callers treat a file with errors as failed.
  public var errors: [YAMLError]

  public init(documents: [YAMLDocument], errors: [YAMLError]) {
    self.documents = documents
    self.errors = errors
  }

  public var hasErrors: Bool { !errors.isEmpty }
}
