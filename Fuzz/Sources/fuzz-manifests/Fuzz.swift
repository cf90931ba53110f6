// Fuzz target: the manifest decoder with the cross-resource rules, over up to two files
import EmpireModel
import Foundation
import FuzzDriver

func fuzzOne(_ bytes: [UInt8]) {
    // A 0xFF byte splits the input into two files, so cross-file rules (duplicates, references) run too.
    let parts = bytes.split(separator: 0xFF, maxSplits: 1, omittingEmptySubsequences: false)
    let sources = parts.enumerated().map { i, p in ManifestSource(displayPath: "f\(i).yaml", relativePath: "f\(i).yaml", content: .bytes(Array(p))) }
    let report = ManifestLoader.validate(sources, fileExists: { $0.hasSuffix(".json") }, readFile: { _ in Array("{\"nodes\":[],\"connections\":{}}".utf8) })
    for d in report.diagnostics { _ = d.rendered }
}

@main struct Fuzz {
    static func main() { fuzzMain(fuzzOne) }
}
