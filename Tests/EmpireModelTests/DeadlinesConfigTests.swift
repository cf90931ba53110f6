import Foundation
import Testing

@testable import EmpireModel

/// `deadlines:` of ytempire.yaml.
@Suite("ReconcilerConfig deadlines")
struct DeadlinesConfigTests {
  @Test("defaults when absent; the example sets them; each is read, and one out of range is a named error")
  func deadlines() throws {
    let none = try #require(ReconcilerConfigTests.load(ReconcilerConfigTests.minimal()).config)
    #expect(none.deadlines.request == .seconds(30))
    #expect(none.deadlines.call == .seconds(360))
    #expect(none.deadlines.observe == .seconds(600))

    let example = try #require(
      ReconcilerConfigLoader.load(path: Support.packageRoot.appendingPathComponent("examples/ytempire.yaml").path).config)
    #expect(example.deadlines == ReconcilerConfig.Deadlines(), "the example writes the defaults")

    let set = try #require(
      ReconcilerConfigTests.load(ReconcilerConfigTests.minimal("deadlines: {request: 5s, call: 1m, observe: 2m30s}")).config)
    #expect(set.deadlines.request == .seconds(5))
    #expect(set.deadlines.call == .seconds(60))
    #expect(set.deadlines.observe == .seconds(150))

    let (bad, diags) = ReconcilerConfigTests.load(ReconcilerConfigTests.minimal("deadlines: {request: 50ms, observe: 2d, calls: 1m}"))
    #expect(bad == nil)
    let messages = ReconcilerConfigTests.errors(diags).map(\.message)
    #expect(messages.contains("deadlines.request is 50ms; write a deadline between 100ms and 1d"), "\(messages)")
    #expect(messages.contains("deadlines.observe is 2d; write a deadline between 100ms and 1d"), "\(messages)")
    #expect(messages.contains { $0.contains("unknown field 'calls' in deadlines") }, "\(messages)")
  }
}
