// Fuzz target: the reconciler-config loader (ytempire.yaml)
import EmpireModel
import Foundation
import FuzzDriver

func fuzzOne(_ bytes: [UInt8]) {
    let (config, diags) = ReconcilerConfigLoader.load(bytes: bytes, displayPath: "ytempire.yaml", baseDirectory: "/nonexistent-fuzz-base")
    for d in diags { _ = d.rendered }
    _ = config?.stateDir
}

@main struct Fuzz {
    static func main() { fuzzMain(fuzzOne) }
}
