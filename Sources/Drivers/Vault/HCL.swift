import DriverKit
import EmpireModel

/// Renders the ACL policy of one service account: read on the KV v2 data and metadata of the
/// secrets it lists, nothing more.
enum PolicyHCL {
  /// HCL string literals take JSON's escapes.
  static func quote(_ s: String) -> String { JSONValue.quoted(s) }

  /// `<mount>/data/<path>/<secret>` (the path may be empty).
  static func dataPath(mount: String, path: String, secret: String) -> String {
    path.isEmpty ? "\(mount)/data/\(secret)" : "\(mount)/data/\(path)/\(secret)"
  }

  static func metadataPath(mount: String, path: String, secret: String) -> String {
    path.isEmpty ? "\(mount)/metadata/\(secret)" : "\(mount)/metadata/\(path)/\(secret)"
  }

  static func render(policy: String, account: SecurityPolicySpec.ServiceAccount, mount: String, path: String) -> String {
    var out = "# Managed by ytempire (SecurityPolicy/\(oneLine(policy))): service account \(oneLine(account.name)).\n"
    out += "# Do not edit: ytempire rewrites this policy from the repository.\n"
    if !account.permissions.isEmpty {
      out += "# Service permissions (enforced by the services, not by Vault): \(account.permissions.map(oneLine).joined(separator: ", "))\n"
    }
    for secret in account.secrets.sorted() {
      out += "\npath \(quote(dataPath(mount: mount, path: path, secret: secret))) {\n  capabilities = [\"read\"]\n}\n"
      out += "\npath \(quote(metadataPath(mount: mount, path: path, secret: secret))) {\n  capabilities = [\"read\"]\n}\n"
    }
    return out
  }

  private static func oneLine(_ s: String) -> String {
    String(s.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : Character($0) })
  }
}
