import DriverKit
import EmpireModel
import Testing

@testable import CloudflareDriver

/// Which Cloudflare rules `ytempire import` reads back as CDNZone rules.
@Suite("Cloudflare import: rules as CDNZone rules")
struct CloudflareImportTests {
  static let globs: [[String]] = [
    ["*.mp4"], ["*.jpg", "*.png", "*.webp"], ["/api/*"], ["*.thumbnail.jpg"], ["/robots.txt"],
    ["/a/*", "*.css", "*.js", "/b.txt", "*.min.map"],
  ]

  @Test("every match list the model writes reads back from its expression as the same globs", arguments: globs)
  func matchesRoundTrip(_ match: [String]) {
    let expr = Canonical.expression(match)
    let back = CloudflareDriver.matches(expr)
    #expect(back.map(Canonical.expression) == expr, "\(expr) → \(String(describing: back))")
    #expect(Set(back ?? []) == Set(match))
  }

  @Test(
    "expressions the model does not write are refused",
    arguments: [
      "http.request.uri.path contains \"/x\"", "http.host eq \"a.com\"", "starts_with(http.request.uri.path, \"/x\") and true",
      "http.request.uri.path.extension eq \"a\\\"b\"", "",
    ])
  func refused(_ expr: String) {
    #expect(CloudflareDriver.matches(expr) == nil, "\(expr)")
  }

  @Test("an owned rule is imported when rendering it back gives it exactly; a hand-tuned one is not")
  func rules() throws {
    let spec = CDNZoneSpec.Rule(
      name: "static-assets", match: ["*.css", "*.js"], edgeTTL: .seconds(31_536_000), browserTTL: .seconds(86_400), cacheLevel: .aggressive)
    var problems: [String] = []
    let rendered = Canonical.cacheRule(spec, resource: "site", problems: &problems)
    let (back, json) = try CloudflareDriver.rule(rendered, resource: "site").get()
    #expect(back == spec)
    #expect(json["edgeTTL"] == "365d" && json["browserTTL"] == "1d" && json["cacheLevel"] == "aggressive")

    var tuned = rendered.object!
    tuned["description"] = "tuned by hand"
    guard case .failure(let why) = CloudflareDriver.rule(.object(tuned), resource: "site") else {
      Issue.record("a hand-edited rule was imported")
      return
    }
    #expect(why.description.contains("not what a CDNZone rule renders"))
  }
}
