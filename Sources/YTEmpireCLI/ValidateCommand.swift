import ArgumentParser
import EmpireModel
import Foundation

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a desired-state repository: YAML, resource schemas and cross-resource rules.",
        discussion: """
        Reads every *.yaml / *.yml file under PATH (default: the current directory), honouring \
        .ytempireignore files, and reports every problem compiler-style: \
        file:line:col: severity: message [code]. Exit status 0 when valid (warnings allowed), 1 otherwise.
        """
    )

    @Argument(help: "Directory (or single file) holding the manifests.")
    var path: String = "."

    @Option(name: .long, help: "Output format: text or json.")
    var output: OutputFormat = .text

    func run() throws {
        let report = ValidationRun.run(path: path)
        switch output {
        case .text:
            let color = Terminal.useColor(STDERR_FILENO)
            var err = ""
            for d in report.diagnostics { err += Terminal.render(d, color: color) + "\n" }
            Terminal.write(err, to: .standardError)
            Terminal.write(ValidationRun.summary(report, path: path) + "\n", to: .standardOutput)
        case .json:
            Terminal.write(ValidationRun.json(report) + "\n", to: .standardOutput)
        }
        if !report.isValid { throw ExitCode(1) }
    }
}

/// The validate pipeline shared by the command and tests.
public enum ValidationRun {
    public static func run(path: String, options: LoadOptions = LoadOptions()) -> ValidationReport {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            let d = Diagnostic(.error, .fileUnreadable, "no such file or directory", at: .init(file: path, line: 1, column: 1))
            return ValidationReport(resources: [], diagnostics: [d], fileCount: 0)
        }
        let root = isDir.boolValue ? (path.hasSuffix("/") && path.count > 1 ? String(path.dropLast()) : path) : path
        let listing = DirectorySource.list(root: root)
        var extra = listing.diagnostics
        if listing.sources.isEmpty {
            extra.append(Diagnostic(.warning, .emptyRepository, "no *.yaml or *.yml manifests found", at: .init(file: path, line: 1, column: 1)))
        }
        let files = listing.files
        return ManifestLoader.validate(listing.sources, options: options, extraDiagnostics: extra, fileExists: { files.contains($0) })
    }

    public static func summary(_ r: ValidationReport, path: String) -> String {
        let kinds = r.countsByKind.map { "\($0.1) \($0.0.rawValue)" }.joined(separator: ", ")
        let count = r.resources.count
        var s = "\(path): \(count) resource\(count == 1 ? "" : "s") in \(r.fileCount) file\(r.fileCount == 1 ? "" : "s")"
        if !kinds.isEmpty { s += " (\(kinds))" }
        if r.isValid {
            s += ": valid"
            if r.warningCount > 0 { s += ", \(r.warningCount) warning\(r.warningCount == 1 ? "" : "s")" }
        } else {
            s += ": \(r.errorCount) error\(r.errorCount == 1 ? "" : "s")"
            if r.warningCount > 0 { s += ", \(r.warningCount) warning\(r.warningCount == 1 ? "" : "s")" }
        }
        return s
    }

    /// The documented, stable JSON shape (docs/cli.md).
    public static func json(_ r: ValidationReport) -> String {
        struct Out: Encodable {
            var version = 1
            var valid: Bool
            var files: Int
            var resources: [String: Int]
            var errors: Int
            var warnings: Int
            var diagnostics: [D]
        }
        struct D: Encodable {
            var file: String, line: Int, column: Int, severity: String, code: String, message: String
            var notes: [Diagnostic.Note]?
        }
        var kinds: [String: Int] = [:]
        for (k, n) in r.countsByKind { kinds[k.rawValue] = n }
        let out = Out(valid: r.isValid, files: r.fileCount, resources: kinds, errors: r.errorCount, warnings: r.warningCount,
                      diagnostics: r.diagnostics.map {
                          D(file: $0.file, line: $0.line, column: $0.column, severity: $0.severity.rawValue, code: $0.code,
                            message: $0.message, notes: $0.notes.isEmpty ? nil : $0.notes)
                      })
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return String(decoding: (try? enc.encode(out)) ?? Data(), as: UTF8.self)
    }
}
