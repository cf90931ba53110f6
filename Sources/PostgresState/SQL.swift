import PostgresNIO

/// A statement whose shape depends on its data (multi-row VALUES lists): SQL text with `$n`
/// placeholders, and the values bound to them. Values are never spliced into the text.
struct SQL {
  private(set) var text = ""
  private(set) var binds = PostgresBindings()

  init(_ text: String = "") { self.text = text }

  mutating func add(_ s: String) { text += s }

  /// A placeholder bound to `value` (NULL for nil), cast to `type` so that a VALUES list
  /// types its columns from the table, not from the first row's values.
  mutating func bind<V: PostgresDynamicTypeEncodable>(_ value: V?, as type: String) {
    if let value { binds.append(value) } else { binds.appendNull() }
    text += "$\(binds.count)::\(type)"
  }

  var query: PostgresQuery { PostgresQuery(unsafeSQL: text, binds: binds) }

  /// PostgreSQL's limit on the values one statement may bind.
  static let maxBinds = 65_535
}
