import DriverKit
import Testing

@Suite("import names: keys from titles")
struct ImportNameTests {
  @Test(
    "titles become lower-case hyphenated keys; symbols and emoji are separators; nothing usable falls back",
    arguments: [
      ("AI Explained", "ai-explained"), ("*Stars & Stripes: #1", "stars-stripes-1"), ("yes", "yes"), ("0123", "0123"),
      ("  --- ", "fallback"), ("🎬✨", "fallback"), ("Größe über alles", "gr-e-ber-alles"),
    ])
  func slug(_ title: String, _ expected: String) {
    #expect(ImportNames.slug(title, fallback: "fallback") == expected)
  }

  @Test("keys are unique, at most 63 bytes, and never end in a hyphen")
  func unique() {
    var taken = Set<String>()
    #expect(ImportNames.unique("a", in: &taken) == "a")
    #expect(ImportNames.unique("a", in: &taken) == "a-2")
    #expect(ImportNames.unique("a", in: &taken) == "a-3")
    let long = String(repeating: "x", count: 55) + "-yyyy"
    let n = ImportNames.unique(long, in: &taken)
    #expect(n.utf8.count <= 63 && !n.hasSuffix("-"))
    #expect(ImportNames.unique(long, in: &taken) == n + "-2")
    #expect(ImportNames.slug(String(repeating: "word ", count: 40), fallback: "f").utf8.count <= 63)
  }
}
