import CairnCore
import Foundation

/// A path given on the command line: either inside a Cairn mount (`~/cairn/notes.txt`), whose
/// workspace is read from the mount table, or relative to the root of `--workspace`.
struct PathArgument {
    var workspace: String
    var relative: String

    init(_ path: String, workspace: String?) {
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        for mount in Self.cairnMounts() where absolute == mount.point || absolute.hasPrefix(mount.point + "/") {
            self.workspace = workspace ?? mount.workspace
            self.relative = String(absolute.dropFirst(mount.point.count))
            return
        }
        self.workspace = workspace ?? "default"
        self.relative = path
    }

    /// Mounts of type fuse.cairn whose source names a workspace (`cairn:<workspace>`).
    static func cairnMounts() -> [(point: String, workspace: String)] {
        guard let text = try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ")
            guard f.count > 2, f[2] == "fuse.cairn", f[0].hasPrefix("cairn:") else { return nil }
            let point = String(f[1]).replacingOccurrences(of: "\\040", with: " ")
            return (point, String(f[0].dropFirst(6)))
        }
    }
}
