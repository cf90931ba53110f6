import ArgumentParser
import DriverKit
import EmpireModel
import Foundation
import Reconciler
import Workspace

struct StatusCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "status",
    abstract: "Show the status of every resource as the last apply left it.",
    discussion: "Reads the state directory of the configuration (nothing is observed or changed)."
  )

  @Option(name: .long, help: "Reconciler configuration (default: ./ytempire.yaml).")
  var config: String?

  @Option(name: .long, help: "Output format: text or json.")
  var output: OutputFormat = .text

  func run() throws {
    let cmd = self
    try runBlocking {
      let (lastApplied, lastAttempted, all) = try Workspace.open(cmd.config, lock: false).status()
      switch cmd.output {
      case .json:
        struct Out: Encodable {
          var version = 1
          var lastAppliedRevision: String?
          var lastAttemptedRevision: String?
          var resources: [ResourceStatusRecord]
        }
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        e.dateEncodingStrategy = .iso8601
        let data = try e.encode(Out(lastAppliedRevision: lastApplied, lastAttemptedRevision: lastAttempted, resources: all))
        Terminal.write(String(decoding: data, as: UTF8.self) + "\n", to: .standardOutput)
      case .text:
        var out = "Last applied: \(lastApplied ?? "never")\nLast attempted: \(lastAttempted ?? "never")\n\n"
        if all.isEmpty { out += "No status yet: run `ytempire apply`.\n" }
        let w = max(10, all.map { $0.id.description.count }.max() ?? 10)
        for s in all {
          let ready = s.conditions.first { $0.type == .ready }
          let flags = s.conditions.filter { $0.type != .ready && $0.type != .reconciling && $0.status == .true }.map(\.type.rawValue)
          let name = s.id.description.padding(toLength: w, withPad: " ", startingAt: 0)
          out += "\(name)  \(ready.map { $0.status == .true ? "Ready" : "\($0.reason)" } ?? "Unknown")"
          if !flags.isEmpty { out += " [\(flags.joined(separator: ", "))]" }
          if let r = ready, r.status != .true { out += " — \(TextEscape.escape(r.message))" }
          out += "\n"
        }
        Terminal.write(out, to: .standardOutput)
      }
    }
  }
}
