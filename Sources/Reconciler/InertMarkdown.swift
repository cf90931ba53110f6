import EmpireModel

/// Markdown in which no value can become markup (DESIGN A10 "Markdown is inert"): every value
/// from the repository or from an API is shown as a code span, so a pull request's description
/// cannot put a link, image, heading, emphasis, HTML or an extra table cell into the bot's comment.
package enum InertMarkdown {
  /// `value` as one code span: control characters escaped as in text output (a newline cannot
  /// end a paragraph or a table row), a backtick fence longer than the longest backtick run
  /// inside, and a space of padding on each side when the content starts or ends with a backtick
  /// or a space (CommonMark strips one space from each side of a code span that has both).
  /// `inTable`: every `|` is written `\|` — in a GFM table a `|` splits the cell even inside a
  /// code span, and cmark-gfm turns `\|` back into `|` inside the span before parsing it.
  package static func code(_ value: String, inTable: Bool = false) -> String {
    var s = TextEscape.escape(value)
    if inTable { s = s.replacingOccurrences(of: "|", with: "\\|") }
    var longest = 0
    var run = 0
    for c in s.unicodeScalars {
      if c == "`" {
        run += 1
        longest = max(longest, run)
      } else {
        run = 0
      }
    }
    let fence = String(repeating: "`", count: longest + 1)
    let pad = s.isEmpty || s.first == "`" || s.last == "`" || s.first == " " || s.last == " " ? " " : ""
    return fence + pad + s + pad + fence
  }
}
