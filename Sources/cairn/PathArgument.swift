import CairnCore
import CairnMount
import Foundation

/// A path given on the command line: either inside a Cairn mount (`~/cairn/notes.txt`), whose
/// workspace is read from the mount table, or relative to the root of `--workspace`.
struct PathArgument {
    var workspace: String
    var relative: String
    /// Whether the path is inside a Cairn mount (else `workspace` is the default one).
    var inMount = false

    /// `relative` is given without leading or trailing '/', so it reads the same however the
    /// path was written.
    init(_ path: String, workspace: String?) {
        let found = PathArgument(locating: path, workspace: workspace)
        self.init(
            workspace: found.workspace,
            relative: found.relative.split(separator: "/", omittingEmptySubsequences: true).joined(separator: "/"))
        inMount = found.inMount
    }

    private init(locating path: String, workspace: String?) {
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        for mount in Self.cairnMounts() where absolute == mount.point || absolute.hasPrefix(mount.point + "/") {
            let inside = String(absolute.dropFirst(mount.point.count))
            if mount.workspace == Mountpoint.allWorkspaces {
                // A mount of every workspace: the first name is the workspace.
                let names = inside.split(separator: "/", maxSplits: 1).map(String.init)
                self.workspace = workspace ?? names.first ?? "default"
                self.relative = names.count > 1 ? names[1] : ""
            } else {
                self.workspace = workspace ?? mount.workspace
                self.relative = inside
            }
            inMount = true
            return
        }
        self.workspace = workspace ?? "default"
        self.relative = path
    }

    private init(workspace: String, relative: String) {
        self.workspace = workspace
        self.relative = relative
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

/// A path's history read from a store opened for reading: what `cairn log` and `cairn cat` share.
struct PathHistory {
    let store: Store
    let fs: FileSystem
    let target: PathArgument
    let versions: [VersionRecord]

    /// Opens the store and reads the history; the caller closes `store`.
    init(_ path: String, workspace: String?, storeOptions: StoreOptions) throws {
        target = PathArgument(path, workspace: workspace)
        store = try storeOptions.openReadOnly()
        do {
            fs = try FileSystem(readOnly: store)
            let ws = try store.workspace(named: target.workspace)
            if try fs.hasPendingDirectories(in: ws) {
                // A fork whose directories on the way may still show their parent's entries:
                // the store's writer copies them in first (best effort; without it, what is
                // copied already is what is found).
                _ = try? storeOptions.perform(.prepare(workspace: ws.name, path: target.relative))
            }
            do {
                versions = try fs.history(of: target.relative, in: ws)
            } catch .notFound {
                throw CLIError(message: "no history for '\(target.relative)' in workspace '\(ws.name)'")
            } catch {
                throw error as any Error
            }
        } catch {
            store.close()
            throw error
        }
    }
}

extension PathHistory {
    /// The whole content of one of the versions.
    func content(of version: VersionRecord) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(version.size))
        var offset = 0
        while offset < out.count {
            let n = try out[offset...].withUnsafeMutableBytes {
                try fs.read(version: version, offset: Int64(offset), into: $0)
            }
            if n == 0 { break }
            offset += n
        }
        return Array(out.prefix(offset))
    }
}
