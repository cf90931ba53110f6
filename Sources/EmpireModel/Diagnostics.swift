import YAMLKit

/// How bad a diagnostic is. Errors make `validate` fail; warnings do not.
public enum Severity: String, Sendable, Codable, Comparable {
  case error, warning, note

  private var rank: Int { self == .error ? 0 : self == .warning ? 1 : 2 }
  public static func < (a: Severity, b: Severity) -> Bool { a.rank < b.rank }
}

/// A located message, printed compiler-style: `file:line:col: error: message [code]`.
///
/// `code` is a stable, documented identifier (see docs/diagnostics.md) that tools and
/// tests match on; the message is for people and may be reworded.
public struct Diagnostic: Sendable, Codable, Hashable {
  public var file: String
  public var line: Int
  public var column: Int
  public var severity: Severity
  public var code: String
  public var message: String
  public var notes: [Note]

  public struct Note: Sendable, Codable, Hashable {
    public var file: String
    public var line: Int
    public var column: Int
    public var message: String
  }

  public init(_ severity: Severity, _ code: DiagnosticCode, _ message: String, at mark: SourceMark, notes: [Note] = []) {
    self.file = mark.file
    self.line = mark.line
    self.column = mark.column
    self.severity = severity
    self.code = code.rawValue
    self.message = message
    self.notes = notes
  }

  /// `file:line:col: severity: message`, followed by notes on their own lines.
  public var rendered: String {
    var s = "\(TextEscape.escape(file)):\(line):\(column): \(severity.rawValue): \(TextEscape.escape(message)) [\(code)]"
    for n in notes { s += "\n\(TextEscape.escape(n.file)):\(n.line):\(n.column): note: \(TextEscape.escape(n.message))" }
    return s
  }

  /// Sort order of a run's report: by file, then line, then column, errors first.
  public static func reportOrder(_ a: Diagnostic, _ b: Diagnostic) -> Bool {
    if a.file != b.file { return a.file < b.file }
    if a.line != b.line { return a.line < b.line }
    if a.column != b.column { return a.column < b.column }
    if a.severity != b.severity { return a.severity < b.severity }
    return a.message < b.message
  }
}

extension Diagnostic.Note {
  public init(_ message: String, at mark: SourceMark) {
    self.init(file: mark.file, line: mark.line, column: mark.column, message: message)
  }
}

/// Every diagnostic code `ytempire` emits. The raw values are the public, stable codes.
public enum DiagnosticCode: String, Sendable, CaseIterable {
  // Files and YAML syntax (YAMLKit's codes are passed through with the same spelling).
  case fileUnreadable = "file-unreadable"
  case fileTooLarge = "file-too-large"
  case binaryContent = "binary-content"
  case invalidEncoding = "invalid-encoding"
  case yamlSyntax = "yaml-syntax"
  case aliasLimit = "alias-limit"
  case depthLimit = "depth-limit"
  case documentTooLarge = "document-too-large"
  case nodeLimit = "node-limit"
  case duplicateKey = "duplicate-key"
  case undefinedAlias = "undefined-alias"
  case invalidMerge = "invalid-merge"
  case complexKey = "complex-key"
  case unsupportedTag = "unsupported-tag"
  case tagMismatch = "tag-mismatch"
  case symlinkSkipped = "symlink-skipped"
  case submoduleSkipped = "submodule-skipped"
  case tooManyFiles = "too-many-files"
  case emptyRepository = "no-resources"

  // Envelope.
  case unknownApiVersion = "unknown-api-version"
  case unknownKind = "unknown-kind"
  case invalidName = "invalid-name"

  // Fields and values.
  case unknownField = "unknown-field"
  case missingField = "missing-field"
  case typeMismatch = "type-mismatch"
  case yaml11Boolean = "yaml11-boolean"
  case invalidValue = "invalid-value"
  case outOfRange = "out-of-range"
  case invalidEnum = "invalid-enum"
  case invalidDuration = "invalid-duration"
  case invalidCron = "invalid-cron"
  case unknownTimezone = "unknown-timezone"
  case invalidURL = "invalid-url"
  case invalidPath = "invalid-path"
  case mutuallyExclusive = "mutually-exclusive"
  case duplicateEntry = "duplicate-entry"

  // Cross-resource rules.
  case duplicateName = "duplicate-name"
  case unresolvedReference = "unresolved-reference"
  case wrongCapability = "wrong-capability"
  case quotaShareExceeded = "quota-share-exceeded"
  case quotaReserveExceeded = "quota-reserve-exceeded"
  case selectorMatchesNothing = "selector-matches-nothing"
  case duplicateZone = "duplicate-zone"
  case missingFile = "missing-file"
  case invalidWorkflowFile = "invalid-workflow-file"
  case cronNeverFires = "cron-never-fires"
  case inactiveReference = "inactive-reference"

  // Reconciler configuration (ytempire.yaml).
  case invalidSecretRef = "invalid-secret-ref"
  case literalSecret = "literal-secret"
}

/// Collects diagnostics while one file or one cross-resource pass is checked.
/// Not shared across threads: each worker has its own and they are merged.
public struct DiagnosticBag: Sendable {
  /// At most this many diagnostics are kept per file (the rest are counted, not kept), so a
  /// file of a million bad documents costs a bounded amount of memory and output.
  public static let perFileLimit = 100
  /// … and at most this many per run.
  public static let perRunLimit = 1000

  public private(set) var items: [Diagnostic] = []
  /// Diagnostics counted but not kept (over `limit`).
  public private(set) var omittedErrors = 0
  public private(set) var omittedWarnings = 0
  public let limit: Int
  public init(limit: Int = .max) { self.limit = max(0, limit) }

  public var hasErrors: Bool { omittedErrors > 0 || items.contains { $0.severity == .error } }

  public mutating func error(_ code: DiagnosticCode, _ message: String, at mark: SourceMark, notes: [Diagnostic.Note] = []) {
    append(Diagnostic(.error, code, message, at: mark, notes: notes))
  }

  public mutating func warning(_ code: DiagnosticCode, _ message: String, at mark: SourceMark, notes: [Diagnostic.Note] = []) {
    append(Diagnostic(.warning, code, message, at: mark, notes: notes))
  }

  public mutating func append(_ d: Diagnostic) {
    if items.count < limit {
      items.append(d)
      return
    }
    if d.severity == .error { omittedErrors &+= 1 } else if d.severity == .warning { omittedWarnings &+= 1 }
  }

  public mutating func append(contentsOf other: DiagnosticBag) {
    for d in other.items { append(d) }
    omittedErrors &+= other.omittedErrors
    omittedWarnings &+= other.omittedWarnings
  }

  /// Counts diagnostics that were dropped elsewhere (a capped bag merged into this one).
  public mutating func countOmitted(errors: Int, warnings: Int) {
    omittedErrors &+= max(0, errors)
    omittedWarnings &+= max(0, warnings)
  }
}

/// Escapes control characters (C0, DEL, C1: newline, CR, ESC, …) for terminal output, so a file
/// name or value cannot forge a diagnostic line or colours. The one escaper of text output:
/// diagnostics, validate's summary, plans, status and apply messages. JSON output escapes itself.
public enum TextEscape {
  public static func escape(_ s: String) -> String {
    guard s.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F || (0x80...0x9F).contains($0.value) }) else { return s }
    var out = ""
    for u in s.unicodeScalars {
      switch u.value {
      case 0x0A: out += "\\n"
      case 0x0D: out += "\\r"
      case 0x09: out += "\\t"
      case 0..<0x20, 0x7F, 0x80...0x9F: out += String(format: "\\u{%X}", u.value)
      default: out.unicodeScalars.append(u)
      }
    }
    return out
  }
}
