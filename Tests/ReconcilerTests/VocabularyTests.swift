import DriverKit
import EmpireModel
import Foundation
import PlanFile
import Resilience
import Testing

@testable import Reconciler

@Suite("Vocabulary: keys, conditions and error categories as types")
struct VocabularyTests {
  @Test("a driver-resource key is driver|Kind/name on the wire, and nothing else reads as one")
  func driverResourceKey() throws {
    let k = DriverResourceKey("youtube", ResourceID(.channel, "tech-daily"))
    #expect(k.description == "youtube|Channel/tech-daily")
    #expect(DriverResourceKey(parsing: "youtube|Channel/tech-daily") == k)
    #expect(DriverResourceKey(parsing: "youtube|channel/tech-daily") == k)  // kinds compare case-insensitively
    for bad in ["", "youtube", "|Channel/x", "youtube|", "youtube|Channel/", "youtube|Nope/x", "a/b|Channel/x"] {
      #expect(DriverResourceKey(parsing: bad) == nil, "\(bad)")
    }
    // As a dictionary key, it is a JSON object's key (the plan file's form is unchanged).
    let data = try JSONEncoder().encode([k: "digest"])
    #expect(String(decoding: data, as: UTF8.self) == #"{"youtube|Channel\/tech-daily":"digest"}"#)
    #expect(try JSONDecoder().decode([DriverResourceKey: String].self, from: data) == [k: "digest"])
    #expect(throws: DecodingError.self) { try JSONDecoder().decode([DriverResourceKey: String].self, from: Data(#"{"no-bar":"x"}"#.utf8)) }
  }

  @Test("conditions and deferral reasons are written as the status files and plans always had them")
  func wireForms() throws {
    let c = ResourceStatusRecord.Condition(
      type: .ready, status: .true, reason: .converged, message: "m", lastTransitionTime: Date(timeIntervalSince1970: 0))
    let json = String(decoding: try JSONEncoder().encode(c), as: UTF8.self)
    #expect(json.contains(#""type":"Ready""#) && json.contains(#""status":"True""#) && json.contains(#""reason":"Converged""#))
    #expect(try JSONDecoder().decode(ResourceStatusRecord.Condition.self, from: Data(json.utf8)) == c)
    #expect(Plan.Deferral.Reason.allCases.map(\.rawValue) == ["quota", "syncWindow", "outcomeUnknown", "nonEmpty"])
    #expect(Plan.Deferral.Reason.allCases.map(\.condition.rawValue) == ["Quota", "SyncWindow", "OutcomeUnknown", "DeleteBlocked"])
  }

  @Test("an error's category decides: a quota answer defers, a rejection stalls, the rest wait for the next run")
  func categories() {
    #expect(DriverErrorCategory.http(status: 403, reason: "quotaExceeded") == .quota)
    #expect(DriverErrorCategory.http(status: 403, reason: "dailyLimitExceeded") == .quota)
    #expect(DriverErrorCategory.http(status: 403, reason: "rateLimitExceeded") == .rateLimited)
    #expect(DriverErrorCategory.http(status: 403, reason: "forbidden") == .permission)
    #expect(DriverErrorCategory.http(status: 400, reason: nil) == .rejected)
    #expect(DriverErrorCategory.http(status: 401, reason: nil) == .authentication)
    #expect(DriverErrorCategory.http(status: 404, reason: nil) == .notFound)
    #expect(DriverErrorCategory.http(status: 409, reason: nil) == .conflict)
    #expect(DriverErrorCategory.http(status: 429, reason: nil) == .rateLimited)
    #expect(DriverErrorCategory.http(status: 503, reason: nil) == .unavailable)
    let stalls = DriverErrorCategory.allCases.filter { $0.waitsForChange }
    #expect(stalls == [.permission, .rejected, .notFound])

    // The resilience layer's errors, mapped in one place.
    let quota = ServiceFailure(service: "youtube", category: .quotaExceeded, status: 403, reason: "quotaExceeded", message: "spent")
    #expect(DriverErrorCategory.of(quota) == .quota)
    #expect(Engine.isQuotaAnswer(quota))
    let bad = ServiceFailure(service: "n8n", category: .validationError, status: 400, reason: nil, message: "bad")
    #expect(DriverErrorCategory.of(bad) == .rejected)
    #expect(!Engine.isQuotaAnswer(bad))
    #expect(DriverErrorCategory.of(ServiceFailure(service: "x", category: .networkError, message: "reset")) == .unavailable)
    #expect(DriverErrorCategory.of(CancellationError()) == nil)
    // A driver's own error says its category; the engine reads nothing else.
    struct Textual: Error, CustomStringConvertible { var description = "HTTP 403 quotaExceeded" }
    #expect(DriverErrorCategory.of(Textual()) == nil)
    #expect(!Engine.isQuotaAnswer(Textual()))
  }
}
