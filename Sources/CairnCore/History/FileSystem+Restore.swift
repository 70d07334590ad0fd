import Foundation
import Glibc

/// Where a restore takes its state from.
public enum RestoreSource: Sendable, Codable, Equatable {
    /// A point in time as a person writes it (see `PointInTime`).
    case at(String)
    /// A snapshot of the workspace, by name.
    case snapshot(String)
    /// One version (an id from `cairn log`) of the path.
    case version(Int64)
}

extension FileSystem {
    /// Brings `path` (a file, or a directory with everything below it; "" is the whole
    /// workspace) back to its state at `source`, as new versions: files added since are removed,
    /// files deleted since come back, changed ones get their old content. Missing parent
    /// directories are restored too (without their other entries). A restore of the whole
    /// workspace first takes a snapshot named `safetySnapshot` (default `before-restore-<time>`),
    /// so it can be undone. All or nothing: one operation of the writer.
    public func restore(
        _ path: String, in workspace: Workspace, from source: RestoreSource, caller: Caller,
        safetySnapshot: String = "before-restore"
    ) throws(FSError) -> (RestoreSummary, Set<NamespaceChange>) {
        let names = Self.components(path)
        let (seq, chosen) = try restorePoint(source, path: path, in: workspace)
        if names.isEmpty { try sealWriteSessions() }  // the safety snapshot must keep what it shows
        let restorer = try store.write(.now) { db -> Restorer in
            let restorer = Restorer(db, fs: self, workspace: workspace, actor: caller.actor, seq: seq)
            if names.isEmpty {
                let name = try Self.uniqueSnapshotName(db, workspace, prefix: safetySnapshot)
                restorer.summary.safetySnapshot = try Self.createSnapshot(db, of: workspace, name: name, caller: caller)
                    .name
            }
            var live = workspace.root
            var past: InodeID? =
                try PastQueries.version(db, inode: workspace.root, at: seq) == nil ? nil : workspace.root
            var walked: [[UInt8]] = []
            for name in names.dropLast() {
                walked.append(name)
                if let past { try self.copyEntries(db, past) }
                past = try past.flatMap { try PastQueries.lookup(db, parent: $0, name: name, at: seq) }
                try self.copyEntries(db, live)
                if let (_, attrs) = try NamespaceQueries.lookup(db, parent: live, name: name) {
                    guard attrs.isDirectory else {
                        throw FSError.invalidArgument(
                            "'\(Self.display(walked))' is not a directory now; move it away first")
                    }
                    live = attrs.id
                } else if let past, let (version, _) = try PastQueries.version(db, inode: past, at: seq),
                    version.mode & S_IFMT == S_IFDIR
                {
                    live = try restorer.restore(version, parent: live, name: name, withEntries: false)
                } else {
                    throw FSError.invalidArgument(
                        "the directory '\(Self.display(walked))' exists neither now nor at @\(seq); create it first")
                }
            }
            guard let last = names.last else {
                guard past != nil else {
                    throw FSError.invalidArgument("workspace '\(workspace.name)' did not exist at @\(seq)")
                }
                try restorer.restoreEntries(of: workspace.root, into: workspace.root)
                return restorer
            }
            let version: VersionRecord
            if let past { try self.copyEntries(db, past) }
            try self.copyEntries(db, live)
            if let chosen {
                version = chosen
            } else if let inode = try past.flatMap({ try PastQueries.lookup(db, parent: $0, name: last, at: seq) }),
                let (found, _) = try PastQueries.version(db, inode: inode, at: seq)
            {
                version = found
            } else {
                throw FSError.invalidArgument("'\(path)' did not exist at @\(seq) (see `cairn log` or `cairn trash`)")
            }
            try restorer.restore(version, parent: live, name: last)
            return restorer
        }
        try reloadOpenFiles(restorer.contentChanged)
        refreshCapabilityHolders(restorer.changes)
        var changes = restorer.changes
        if let name = restorer.summary.safetySnapshot {
            changes.insert(.snapshot(root: workspace.root, name: Array(name.utf8)))
        }
        return (restorer.summary, changes)
    }

    /// The seq a restore reads, and the exact version when one was named (of a regular file).
    private func restorePoint(_ source: RestoreSource, path: String, in workspace: Workspace) throws(FSError)
        -> (Int64, VersionRecord?)
    {
        switch source {
        case .at(let text):
            return (try seq(of: PointInTime(text)), nil)
        case .snapshot(let name):
            guard let snapshot = try snapshot(of: workspace, named: name) else {
                throw FSError.invalidArgument(
                    "workspace '\(workspace.name)' has no snapshot named '\(name)' (see `cairn snapshot list`)")
            }
            return (snapshot.seq, nil)
        case .version(let id):
            guard let version = try history(of: path, in: workspace).first(where: { $0.id == id }) else {
                throw FSError.invalidArgument("'\(path)' has no version \(id) (see `cairn log \(path)`)")
            }
            // A directory's versions are its attributes: restoring one restores the directory then.
            return (version.seq, version.mode & S_IFMT == S_IFDIR ? nil : version)
        }
    }

    /// Files a handle of this process has open take their new committed content.
    private func reloadOpenFiles(_ inodes: [InodeID]) throws(FSError) {
        for inode in inodes {
            guard let file = openFile(inode) else { continue }
            let (attrs, manifest) = try store.read { db in
                (
                    try NamespaceQueries.requireInode(db, inode),
                    try ContentQueries.currentManifest(db, inode: inode).manifest
                )
            }
            file.committedContentChanged(to: manifest, attributes: attrs)
        }
    }

    private func refreshCapabilityHolders(_ changes: Set<NamespaceChange>) {
        for case .inode(let inode) in changes {
            let holds =
                (try? store.read { db in
                    try XattrQueries.value(db, inode: inode, name: Self.capabilityName) != nil
                }) ?? false
            capabilityHolders.withLock { holders in
                if holds { holders.insert(inode) } else { holders.remove(inode) }
            }
        }
    }

    static func uniqueSnapshotName(_ db: Connection, _ workspace: Workspace, prefix: String) throws -> String {
        let stamp = Timestamp.now().iso8601(milliseconds: false, timeSeparator: "-")
        let base = "\(prefix)-\(stamp)"
        var name = base
        var n = 2
        while try SnapshotQueries.named(db, workspace: workspace.id, name: name) != nil {
            name = "\(base)-\(n)"
            n += 1
        }
        return name
    }

    static func display(_ names: [[UInt8]]) -> String {
        names.map { String(decoding: $0, as: UTF8.self) }.joined(separator: "/")
    }
}
