import ArgumentParser
import DriverKit
import EmpireModel
import Foundation
import Reconciler
import Workspace

/// `ytempire import --out DIR [--kind KIND]… [--youtube-credentials NAME]… [--adopt] [--dry-run] [--max-units N]`.
struct ImportCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "import",
    abstract: "Write manifests for what already exists (channels, workflows, policies, rules), priced in API quota first.",
    discussion: """
      Reads each configured integration with its own observation code and writes one manifest per \
      resource under DIR, in the layout of examples/empire/, checked with the same validation as \
      `ytempire validate`. The price in quota units is printed before anything is read; --max-units \
      refuses a larger import. With --adopt the imported objects are recorded in the state directory \
      as owned, so `plan` on the imported files shows no changes. See docs/import.md.
      """
  )

  @Option(name: .long, help: "Reconciler configuration (default: ./ytempire.yaml).")
  var config: String?

  @Option(name: .long, help: "The folder to write the manifests into (made when missing).")
  var out: String

  @Option(
    name: .long, parsing: .singleValue, help: "Import only this kind (repeatable): Channel, Schedule, CDNZone, SecurityPolicy, Monitor.")
  var kind: [String] = []

  @Option(
    name: .customLong("youtube-credentials"), parsing: .singleValue,
    help: "Import the channel of this `secrets:` entry (repeatable; default: every secret that is a Google refresh token, 1//…).")
  var youtubeCredentials: [String] = []

  @Flag(name: .long, help: "Record every imported object in the state directory as owned by ytempire.")
  var adopt = false

  @Flag(name: .customLong("dry-run"), help: "Print the price and the files it would write; write and record nothing.")
  var dryRun = false

  @Option(name: .customLong("max-units"), help: "Refuse an import that would spend more YouTube quota units than this.")
  var maxUnits: Int?

  @Flag(name: .long, help: "Overwrite files that already exist in DIR.")
  var force = false

  @Option(name: .long, help: "Where the JSON Schemas are, for the editor modelines (default: /usr/local/share/ytempire/schemas).")
  var schemas: String = "/usr/local/share/ytempire/schemas"

  static func parseKind(_ s: String) throws -> Kind {
    guard let k = Kind.allCases.first(where: { $0.rawValue.lowercased() == s.lowercased() }) else {
      throw ValidationError(
        "--kind \(TextEscape.escape(String(s.prefix(64)))): expected one of \(Kind.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    return k
  }

  func validate() throws {
    for k in kind { _ = try Self.parseKind(k) }
    if let m = maxUnits, m < 0 || m > 100_000_000 { throw ValidationError("--max-units \(m): expected 0…100000000") }
    if adopt && dryRun { throw ValidationError("--adopt and --dry-run: a dry run records nothing; give one of them") }
  }

  func run() throws {
    let cmd = self
    try runBlocking {
      var o = ImportOptions(out: cmd.out)
      o.kinds = try cmd.kind.map(Self.parseKind)
      o.youtubeCredentials = cmd.youtubeCredentials
      o.adopt = cmd.adopt
      o.dryRun = cmd.dryRun
      o.maxUnits = cmd.maxUnits
      o.force = cmd.force
      o.schemas = cmd.schemas
      let ws = try Workspace.open(cmd.config)
      let engine = try ws.engine()
      let p = try await ws.prepareImport(o, engine: engine)
      var price = "Import price: \(p.units) unit\(p.units == 1 ? "" : "s") at least"
      let parts = p.byService.map {
        "\($0.service) \($0.calls) call\($0.calls == 1 ? "" : "s"), \($0.units) unit\($0.units == 1 ? "" : "s")"
      }
      if !parts.isEmpty { price += " (" + parts.joined(separator: "; ") + ")" }
      price += ", priced by \(p.pricedBy)."
      if !p.request.youtubeCredentials.isEmpty {
        price += " YouTube channels of: \(p.request.youtubeCredentials.joined(separator: ", "))."
      }
      Terminal.write(price + "\n", to: .standardOutput)
      let report: ImportReport
      do {
        report = try await ws.runImport(p, o, engine: engine)
      } catch let e as ImportRefused {
        Terminal.write("error: \(e.description)\n", to: .standardError)
        throw ExitCode(1)
      }
      for r in report.resources {
        let extra = r.files.isEmpty ? "" : " (+ \(r.files.joined(separator: ", ")))"
        Terminal.write("\(report.dryRun ? "would write" : "wrote") \(cmd.out)/\(r.file)\(extra)  \(r.id)\n", to: .standardOutput)
      }
      for n in report.notImported {
        Terminal.write("not imported: \(TextEscape.escape(n.object)): \(TextEscape.escape(n.reason))\n", to: .standardOutput)
      }
      for e in report.errors { Terminal.write("error: \(TextEscape.escape(e))\n", to: .standardError) }
      var summary =
        "Import \(report.dryRun ? "dry run" : "complete"): \(report.resources.count) resource\(report.resources.count == 1 ? "" : "s")"
      summary += ", \(report.notImported.count) not importable, \(report.errors.count) error\(report.errors.count == 1 ? "" : "s")"
      summary += "; \(report.unitsSpent) unit\(report.unitsSpent == 1 ? "" : "s") spent"
      if cmd.adopt { summary += "; \(report.adopted) adopted (recorded as owned in \(ws.config.stateDir))" }
      Terminal.write(summary + ".\n", to: .standardOutput)
      if !report.errors.isEmpty { throw ExitCode(1) }
    }
  }
}
