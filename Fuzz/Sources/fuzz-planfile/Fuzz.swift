// Fuzz target: the plan-file reader of `ytempire apply PLAN.json` (size cap, version, JSON
// decoding of every plan type, the keyed digest re-computed over the decoded plan)
import Foundation
import FuzzDriver
import PlanFile

/// The state store's plan key, fixed for the fuzzer.
let key = [UInt8](repeating: 0x5a, count: 32)

func fuzzOne(_ bytes: [UInt8]) {
    do {
        let plan = try Plan.read(bytes, file: "plan.json", key: key)
        // A plan that verifies is used: what apply reads from it must not trap either.
        _ = plan.runnable.count
        _ = plan.count(.update)
        _ = plan.json()
    } catch let e as PlanError {
        _ = e.description
    } catch {
        fatalError("Plan.read threw something other than a PlanError: \(error)")
    }
}

@main struct Fuzz {
    static func main() { fuzzMain(fuzzOne) }
}
