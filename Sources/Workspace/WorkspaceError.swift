import EmpireModel

/// Why a workspace call did not do what was asked. The command line renders it (diagnostics
/// first, then the message) and exits 1; `serve` logs it and keeps serving.
public struct WorkspaceError: Error, Sendable, CustomStringConvertible {
  public enum Code: String, Sendable {
    /// No configuration file where one was expected.
    case configMissing = "config-missing"
    /// The configuration does not load (its diagnostics say why).
    case configInvalid = "config-invalid"
    /// The state directory cannot be used (not a directory, no permission, locked by another run).
    case stateDirectory = "state-directory"
    /// The revision does not validate: nothing is planned until it does (Stalled).
    case invalidRevision = "invalid-revision"
    /// The source cannot be read and there is no last good revision to answer from.
    case source
    /// The followed ref was rewritten (force-push) and `allowRewrite` is off: nothing is planned or applied.
    case historyRewritten = "history-rewritten"
    /// A plan file that cannot be used (unreadable, edited, made elsewhere, stale).
    case planFile = "plan-file"
    /// An integration that cannot be set up from the configuration.
    case integration
  }

  public var code: Code
  public var message: String
  /// Located diagnostics that explain the error (configuration or manifests).
  public var diagnostics: [Diagnostic]
  /// Diagnostics counted but not listed (the per-file and per-run caps).
  public var omitted: Int

  public init(_ code: Code, _ message: String, diagnostics: [Diagnostic] = [], omitted: Int = 0) {
    self.code = code
    self.message = message
    self.diagnostics = diagnostics
    self.omitted = omitted
  }

  public var description: String { message }
}
