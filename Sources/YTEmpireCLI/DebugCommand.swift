import ArgumentParser
import Foundation
import GitKit
import Workspace

/// Internal tools for benchmarks and debugging; hidden from help and not a stable interface.
struct DebugCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "debug",
    abstract: "Internal: benchmark and debugging helpers (not a stable interface).",
    shouldDisplay: false,
    subcommands: [ReadTree.self, Fetch.self, BuildInfo.self]
  )

  /// The binary's version and build configuration, for the benchmarks' labels.
  struct BuildInfo: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "build-info", abstract: "Internal: print the version and the build configuration (debug or release).")
    @Option(name: .long, help: "Print only this field: version or configuration.")
    var field: String?

    func validate() throws {
      if let field, !["version", "configuration"].contains(field) {
        throw ValidationError("--field must be version or configuration")
      }
    }

    func run() throws {
      switch field {
      case "version": print(YTEmpireVersion.current)
      case "configuration": print(YTEmpireVersion.configuration)
      default: print("{\"configuration\":\"\(YTEmpireVersion.configuration)\",\"version\":\"\(YTEmpireVersion.current)\"}")
      }
    }
  }

  /// Reads every manifest of a commit from an existing mirror (no fetch) and prints counts.
  struct ReadTree: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "read-tree", abstract: "Internal: read all manifests of a commit from the mirror.")
    @Option var repo: String
    @Option var ref: String?
    @Option var path: String = "."
    @Option var stateDir: String = ValidationRun.defaultStateDir()
    @Flag(help: "Fetch before reading (default: read the mirror as it is).") var fetch = false

    func run() throws {
      let clock = ContinuousClock()
      let start = clock.now
      do throws(GitError) {
        let mirror = try GitMirror(url: repo, stateDir: stateDir)
        if fetch { _ = try mirror.fetch() }
        let rev = try mirror.resolve(ref)
        let tree = try mirror.readManifests(at: rev, options: TreeReadOptions(path: path))
        var bytes = 0
        for s in tree.sources { if case .bytes(let b) = s.content { bytes += b.count } }
        let ms = Double((clock.now - start).components.attoseconds) / 1e15 + Double((clock.now - start).components.seconds) * 1000
        print("\(rev) files=\(tree.sources.count) bytes=\(bytes) ms=\(String(format: "%.1f", ms))")
      } catch {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(1)
      }
    }
  }

  /// Fetches into the mirror and prints what changed.
  struct Fetch: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "fetch", abstract: "Internal: fetch the mirror of a repository.")
    @Option var repo: String
    @Option var ref: String?
    @Option var stateDir: String = ValidationRun.defaultStateDir()

    func run() throws {
      let clock = ContinuousClock()
      let start = clock.now
      do throws(GitError) {
        let mirror = try GitMirror(url: repo, stateDir: stateDir)
        let r = try mirror.fetch()
        let rev = try mirror.resolve(ref)
        let d = clock.now - start
        let ms = Double(d.components.attoseconds) / 1e15 + Double(d.components.seconds) * 1000
        print("\(rev) updated=\(r.updatedRefs.count) ms=\(String(format: "%.1f", ms))")
      } catch {
        FileHandle.standardError.write(Data("error: \(error)\n".utf8))
        throw ExitCode(1)
      }
    }
  }
}
