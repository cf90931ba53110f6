import Foundation
import YAMLKit

/// Lists the manifests of a working-copy directory: `*.yaml` / `*.yml` files, honouring
/// `.ytempireignore` files (gitignore syntax) at any level, skipping `.git` and symlinks.
public enum DirectorySource {
    public struct Listing: Sendable {
        public var sources: [ManifestSource]
        public var diagnostics: [Diagnostic]
        /// Every regular file that is not ignored, relative to the root (for file references).
        public var files: Set<String>
    }

    public static let ignoreFileName = ".ytempireignore"

    /// `displayRoot` prefixes the paths shown in diagnostics ("" or "." for none).
    public static func list(root: String, displayRoot: String? = nil, maxFiles: Int = 200_000) -> Listing {
        let fm = FileManager.default
        let prefix: String = {
            let d = displayRoot ?? root
            if d.isEmpty || d == "." || d == "./" { return "" }
            return d.hasSuffix("/") ? d : d + "/"
        }()
        var sources: [ManifestSource] = []
        var diags: [Diagnostic] = []
        var files = Set<String>()
        var rules = IgnoreRules()
        var visited = 0

        func walk(_ rel: String) {
            let abs = rel.isEmpty ? root : root + "/" + rel
            let base = rel.isEmpty ? "" : rel + "/"
            if let text = try? String(contentsOfFile: abs + "/" + ignoreFileName, encoding: .utf8) {
                rules.append(parsing: text, base: base)
            }
            guard let names = try? fm.contentsOfDirectory(atPath: abs) else {
                diags.append(Diagnostic(.error, .fileUnreadable, "cannot read directory", at: SourceMark(file: prefix + rel, line: 1, column: 1)))
                return
            }
            for name in names.sorted() {
                if name == ".git" { continue }
                let childRel = base + name
                let childAbs = abs + "/" + name
                guard let attrs = try? fm.attributesOfItem(atPath: childAbs), let type = attrs[.type] as? FileAttributeType else { continue }
                if type == .typeSymbolicLink {
                    if isManifestName(name) {
                        diags.append(Diagnostic(.warning, .symlinkSkipped, "symbolic link skipped; manifests must be regular files", at: SourceMark(file: prefix + childRel, line: 1, column: 1)))
                    }
                    continue
                }
                if type == .typeDirectory {
                    if rules.isIgnored(childRel, isDirectory: true) { continue }
                    walk(childRel)
                    continue
                }
                guard type == .typeRegular, !rules.isIgnored(childRel, isDirectory: false) else { continue }
                files.insert(childRel)
                guard isManifestName(name) else { continue }
                visited += 1
                if visited > maxFiles {
                    if visited == maxFiles + 1 {
                        diags.append(Diagnostic(.error, .tooManyFiles, "more than \(maxFiles) manifest files; the rest are not read", at: SourceMark(file: prefix + childRel, line: 1, column: 1)))
                    }
                    continue
                }
                sources.append(ManifestSource(displayPath: prefix + childRel, relativePath: childRel, content: .file(path: childAbs)))
            }
        }

        var isDir: ObjCBool = false
        if fm.fileExists(atPath: root, isDirectory: &isDir), !isDir.boolValue {
            // A single file.
            let name = (root as NSString).lastPathComponent
            return Listing(sources: [ManifestSource(displayPath: displayRoot ?? root, relativePath: name, content: .file(path: root))],
                           diagnostics: [], files: [name])
        }
        walk("")
        return Listing(sources: sources, diagnostics: diags, files: files)
    }

    static func isManifestName(_ name: String) -> Bool {
        (name.hasSuffix(".yaml") || name.hasSuffix(".yml")) && !name.hasPrefix(".")
    }
}
