import Foundation
internal import GRDB
import Glibc

extension FileSystem {
    /// Searches workspaces as they were at `seq`: the versions current then, ranked as `search`
    /// ranks. The index holds current versions only, so this reads the tree of then and builds a
    /// temporary index of its text files (a version the index has is not read again): slower
    /// than a search of now, in proportion to the workspace's size. A file of then is shown to
    /// those who may read it today, as `.cairn/at` shows it.
    public func search(
        _ query: String, at seq: Int64, in workspace: Workspace? = nil, pathGlob: String? = nil, limit: Int = 20,
        marks: (String, String)? = ("«", "»"), caller: Caller
    ) throws(FSError) -> SearchResults {
        let index = try requireIndex()
        let filter = EventFilter(pattern: pathGlob, kinds: [])
        var files: [(workspace: Workspace, path: String, version: VersionRecord)] = []
        let then = try timeOf(seq: seq)
        let spaces: [Workspace]
        if let workspace { spaces = [workspace] } else { spaces = try store.workspaces() }
        for ws in spaces {
            // A workspace made later had no files then.
            guard ws.created.nanoseconds <= then, try role(of: caller, in: ws) >= .reader else { continue }
            try collectFiles(ws, directory: ws.root, names: [], at: seq, caller: caller) { path, version in
                let record = ChangeRecord(
                    seq: 0, time: version.time, workspace: ws.name, kind: "", path: path, actor: "")
                if filter.matches(record) { files.append((ws, path, version)) }
            }
        }
        do {
            let scratch = try DatabaseQueue()
            return try scratch.write { db -> SearchResults in
                let c = Connection(db.sqliteConnection!)
                try c.run(
                    "CREATE VIRTUAL TABLE texts USING fts5(name, body, tokenize = 'unicode61 remove_diacritics 2')")
                for (number, file) in files.enumerated() {
                    guard let body = try pastText(file.version, name: file.path, index: index) else { continue }
                    let name = file.path.split(separator: "/").last.map(String.init) ?? file.path
                    try c.run("INSERT INTO texts(rowid, name, body) VALUES (?, ?, ?)", [number, name, body])
                }
                let (_, rows) = try Self.matching(query) { match in
                    try c.rows(
                        """
                        SELECT rowid, snippet(texts, -1, ?, ?, '…', 16), rank FROM texts
                        WHERE texts MATCH ? AND rank MATCH 'bm25(4.0, 1.0)' ORDER BY rank LIMIT ?
                        """, [marks?.0 ?? "", marks?.1 ?? "", match, limit])
                }
                return SearchResults(
                    hits: rows.map { row in
                        let file = files[Int(row[0] as Int64)]
                        return SearchHit(
                            workspace: file.workspace.name, path: file.path, version: file.version.id,
                            actor: file.version.actor, time: file.version.time,
                            snippet: marks == nil ? "" : Self.oneLine(row[1]), score: row[2], inode: file.version.inode)
                    }, rankedOnly: nil)
            }
        } catch let error as FSError {
            throw error
        } catch {
            throw FSError(database: error)
        }
    }

    /// When `seq` happened.
    private func timeOf(seq: Int64) throws(FSError) -> Int64 {
        try store.read { db in
            try db.value(Int64.self, "SELECT time_ns FROM events WHERE seq <= ? ORDER BY seq DESC LIMIT 1", [seq])
        }
            ?? 0
    }

    /// Calls `found` with each regular file under `directory` at `seq` that `caller` may read
    /// today, through directories it may search today.
    private func collectFiles(
        _ ws: Workspace, directory: InodeID, names: [[UInt8]], at seq: Int64, caller: Caller,
        _ found: (String, VersionRecord) -> Void
    ) throws(FSError) {
        try ensureEntries(directory)
        let entries = try store.read { db in
            try PastQueries.listing(db, parent: directory, at: seq, afterCookie: 0, limit: Int.max)
        }
        for entry in entries {
            let v = entry.version
            let today = try getattr(v.inode)
            let path = names + [entry.name]
            switch v.mode & S_IFMT {
            case S_IFDIR where caller.maySearch(today):
                try collectFiles(ws, directory: v.inode, names: path, at: seq, caller: caller, found)
            case S_IFREG where caller.mayRead(today):
                found(Self.display(path), v)
            default: break
            }
        }
    }

    /// The text of a past version: from the index when it holds that very version, else read
    /// and extracted now (nil: not text).
    private func pastText(_ version: VersionRecord, name: String, index: SearchIndex) throws(FSError) -> String? {
        let indexed = try index.read { db -> String? in
            guard try db.value(Int64.self, "SELECT version FROM docs WHERE inode = ?", [version.inode]) == version.id
            else { return nil }
            return try db.value(String.self, "SELECT body FROM texts WHERE rowid = ?", [version.inode]) ?? ""
        }
        if let indexed { return indexed }
        var bytes = [UInt8](repeating: 0, count: Int(min(version.size, Int64(ExtractedText.maximumBytes))))
        let count: Int
        do {
            count = try bytes.withUnsafeMutableBytes { buffer in try read(version: version, offset: 0, into: buffer) }
        } catch let error as FSError {
            throw error
        } catch {
            throw FSError.io("\(error)")
        }
        let text = ExtractedText.extract(Array(bytes.prefix(count)), name: name)
        return text.text.isEmpty ? nil : text.text
    }
}
