// Fuzz target: the YAML loader (libyaml events → nodes, limits, marks)
import Foundation
import FuzzDriver
import YAMLKit

func fuzzOne(_ bytes: [UInt8]) {
    let r = YAMLLoader.load(bytes, file: "fuzz.yaml")
    for e in r.errors { _ = e.message }
    for d in r.documents { _ = d.root?.mark }
}

@main struct Fuzz {
    static func main() { fuzzMain(fuzzOne) }
}
