import ArgumentParser
import Basics
import DriverKit
import EmpireModel
import Foundation
import Reconciler
import Workspace

/// A failure the CLI reports as one line and exit 1 (diagnostics were already printed).
struct CLIFailure: Error, CustomStringConvertible {
  var message: String
  init(_ m: String) { message = m }
  var description: String { message }
}

/// Runs async work from a synchronous `ParsableCommand.run()`; renders what it throws.
func runBlocking(_ body: @escaping @Sendable () async throws -> Void) throws {
  let error: any Error
  do { return try AsyncBridge.wait(body) } catch let e { error = e }
  if error is ExitCode { throw error }
  if let e = error as? WorkspaceError {
    printDiagnostics(e.diagnostics, omitted: e.omitted)
    switch e.code {
    case .configInvalid: break  // the diagnostics say it all
    case .invalidRevision: Terminal.write(e.message + "\n", to: .standardError)
    default: Terminal.write("error: \(e.message)\n", to: .standardError)
    }
    throw ExitCode(1)
  }
  Terminal.write("error: \(error)\n", to: .standardError)
  throw ExitCode(1)
}

/// Located diagnostics to stderr, coloured on a terminal.
func printDiagnostics(_ diagnostics: [Diagnostic], omitted: Int = 0) {
  let color = Terminal.useColor(STDERR_FILENO)
  var err = ""
  for d in diagnostics { err += Terminal.render(d, color: color) + "\n" }
  if omitted > 0 { err += "… and \(omitted) more diagnostics not shown\n" }
  Terminal.write(err, to: .standardError)
}

extension Workspace {
  /// The workspace of `--config`, its warnings printed.
  static func open(_ configPath: String?, lock: Bool = true, writer: Bool = true) throws -> Workspace {
    let ws = try Workspace(configPath: configPath, lock: lock, writer: writer)
    printDiagnostics(ws.warnings)
    return ws
  }

  /// Loads a revision and prints its warnings and the source's.
  func loadPrinting(path: String?, ref: String?) async throws -> LoadedRevision {
    let loaded = try await load(path: path, ref: ref)
    printDiagnostics(loaded.diagnostics, omitted: loaded.omitted)
    if let w = loaded.sourceWarning { Terminal.write("warning: \(w)\n", to: .standardError) }
    return loaded
  }
}

enum RefreshOption: String, ExpressibleByArgument, CaseIterable {
  case all, changed, none
  var mode: RefreshMode { RefreshMode(rawValue: rawValue)! }
}

/// `--target KIND/NAME`.
func parseTargets(_ raw: [String]) throws -> [ResourceID] {
  try raw.map { s in
    guard let id = ResourceID(parsing: s) else {
      throw ValidationError(
        "--target \(s): expected KIND/NAME, e.g. Channel/tech-daily (kinds: \(Kind.allCases.map(\.rawValue).joined(separator: ", ")))")
    }
    return id
  }
}
