import Testing

@testable import Reconciler

/// Safety messages print percentages: a measured one just over its limit must not print as the limit.
@Suite struct PercentTests {
  @Test("a percentage just over the limit prints with as many decimals as it takes to differ")
  func overLimit() {
    #expect(SafetyStage.pct(1001.0 * 100 / 2000, over: 50) == "50.05%")
    #expect(SafetyStage.pct(50.0001, over: 50) == "50.0001%")
    #expect(SafetyStage.pct(100.0 / 3, over: 33.3) == "33.33%")
    #expect(SafetyStage.pct(75, over: 50) == "75%")
    #expect(SafetyStage.pct(62.5, over: 50) == "62.5%")
  }

  @Test("a configured limit is printed as written, not rounded")
  func limit() {
    #expect(SafetyStage.pct(50) == "50%")
    #expect(SafetyStage.pct(33.33) == "33.33%")
    #expect(SafetyStage.pct(0.05) == "0.05%")
  }
}
