import Foundation
import Glibc

/// One file that matches a full-text query.
public struct SearchHit: Sendable, Codable, Equatable {
    public var workspace: String
    /// Relative to the workspace's root.
    public var path: String
    public var version: Int64
    public var actor: String
    public var time: Timestamp
    /// The best passage, the matched terms between the search's marks.
    public var snippet: String
    /// BM25 (lower is better), as SQLite's FTS5 computes it.
    public var score: Double
    /// The file, for finding its snippet.
    var inode: InodeID = 0

    private enum CodingKeys: String, CodingKey { case workspace, path, version, actor, time, snippet, score }
}

/// The hits of a search, best first.
public struct SearchResults: Sendable, Codable, Equatable {
    public var hits: [SearchHit]
    /// Set when the query matched more files than a search ranks: the hits are the best of the
    /// files made last, this many of them.
    public var rankedOnly: Int?
}

/// How far the index is, for `cairn index status`.
public struct IndexStatus: Sendable, Codable, Equatable {
    /// The store's last change, and the last one the index has taken in.
    public var storeSeq: Int64
    public var indexedSeq: Int64
    /// Changes (events and versions) the index has still to take in.
    public var backlog: Int64
    public var files: Int64
    public var textBytes: Int64
    /// Files by what was made of them: text, html, pdf, binary, pdf-skipped, unreadable.
    public var formats: [String: Int64]
    public var pdftotextInstalled: Bool
    /// The indexer's last failure, if it has not succeeded since.
    public var lastError: String?
    public var upToDate: Bool { backlog == 0 }
}

extension FileSystem {
    /// The index, or why there is none.
    func requireIndex() throws(FSError) -> SearchIndex {
        guard let searchIndex else {
            throw FSError.invalidArgument(
                "this store has no search index yet: mount it, or run `cairn index rebuild`")
        }
        return searchIndex
    }

    /// Searches the current version of every file `caller` may read: ranked (BM25, a match in the
    /// file's name weighing more), `query` in FTS5's syntax (words, "phrases", prefix*, AND, OR,
    /// NOT, NEAR); words that are not valid syntax are searched as phrases. `marks` go around
    /// each matched term of a hit's snippet; `marks` nil: no snippets (they cost a reading of
    /// each hit's text).
    public func search(
        _ query: String, in workspace: Workspace? = nil, pathGlob: String? = nil, limit: Int = 20,
        marks: (String, String)? = ("«", "»"), caller: Caller
    ) throws(FSError) -> SearchResults {
        let index = try requireIndex()
        guard !query.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw FSError.invalidArgument("the query is empty")
        }
        guard (1...Self.rankedMost).contains(limit) else {
            throw FSError.invalidArgument("a search shows 1 to \(Self.rankedMost) hits")
        }
        let filter = EventFilter(pattern: pathGlob, kinds: [])
        let spaces = Dictionary(uniqueKeysWithValues: try store.workspaces().map { ($0.id, $0) })
        var hits: [SearchHit] = []
        var offset = 0
        // Most hits are readable: a page a little longer than the hits wanted is usually all.
        let page = limit + 16
        var match: String?
        var readers: [Int64: Bool] = [:]
        var capped = false
        while hits.count < limit {
            // Ranking reads every match's positions: a query of common words ranks the
            // `rankedMost` files it matches that were made last (and says so).
            let rows = try index.read { db -> [(InodeID, Int64, Int64, Double)] in
                let run = { (match: String) in
                    try db.rows(
                        """
                        SELECT rowid, score, matched FROM (
                            SELECT rowid, score, count(*) OVER () AS matched, row_number() OVER (ORDER BY rowid DESC) AS n FROM (
                                SELECT texts.rowid AS rowid, bm25(texts, 4.0, 1.0) AS score
                                FROM texts JOIN docs ON docs.inode = texts.rowid
                                WHERE texts MATCH ? AND (? IS NULL OR docs.workspace = ?)
                                ORDER BY texts.rowid DESC LIMIT ?
                            )
                        ) WHERE n <= ? ORDER BY score LIMIT ? OFFSET ?
                        """, [match, workspace?.id, workspace?.id, Self.rankedMost + 1, Self.rankedMost, page, offset])
                }
                let rows: [SQLRow]
                if let match {
                    rows = try run(match)
                } else {
                    (match, rows) = try Self.matching(query, run)
                }
                if let first = rows.first, (first[2] as Int) > Self.rankedMost { capped = true }
                return try rows.compactMap { row in
                    let inode: InodeID = row[0]
                    guard let doc = try db.row("SELECT workspace, version FROM docs WHERE inode = ?", [inode]) else {
                        return nil
                    }
                    return (inode, doc[0], doc[1], row[1])
                }
            }
            for (inode, wsID, version, score) in rows where workspace == nil || wsID == workspace?.id {
                guard let ws = spaces[wsID] else { continue }
                if readers[wsID] == nil { readers[wsID] = try role(of: caller, in: ws) >= .reader }
                guard readers[wsID] == true,
                    let hit = try readableHit(
                        inode: inode, workspace: ws, version: version, score: score, caller: caller)
                else { continue }
                let record = ChangeRecord(
                    seq: 0, time: hit.time, workspace: ws.name, kind: "", path: hit.path, actor: "")
                if filter.matches(record) { hits.append(hit) }
                if hits.count == limit { break }
            }
            if rows.count < page { break }
            offset += page
        }
        guard let marks, let match else { return SearchResults(hits: hits, rankedOnly: capped ? Self.rankedMost : nil) }
        // Only for the hits shown: a snippet reads its file's whole text.
        let shown = try index.read { db in
            try hits.map { hit in
                var hit = hit
                hit.snippet = Self.oneLine(
                    try db.value(
                        String.self,
                        "SELECT snippet(texts, -1, ?, ?, '…', 16) FROM texts WHERE texts MATCH ? AND rowid = ?",
                        [marks.0, marks.1, match, hit.inode]) ?? "")
                return hit
            }
        }
        return SearchResults(hits: shown, rankedOnly: capped ? Self.rankedMost : nil)
    }

    /// The most matches a query ranks (see `SearchResults.rankedOnly`).
    public static let rankedMost = 2000

    /// Runs `run` with `query` as FTS5 syntax, or, when FTS5 cannot parse it (`acme-corp`,
    /// `a.b`), with each of its words as a quoted phrase. Returns the query that ran.
    static func matching(_ query: String, _ run: (String) throws -> [SQLRow]) throws -> (String, [SQLRow]) {
        do {
            return (query, try run(query))
        } catch {
            // FTS5 reports a query it cannot parse in several words (syntax error, unterminated
            // string, no such column, expected integer): any failure is retried as phrases, and
            // if that fails too the first error is the one to report.
            let phrased = phrases(query)
            guard phrased != query, let rows = try? run(phrased) else { throw error }
            return (phrased, rows)
        }
    }

    /// A snippet on one line, its runs of white space made one space.
    static func oneLine(_ snippet: String) -> String {
        snippet.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
    }

    /// Each word of `query` as a quoted phrase (a query FTS5 cannot parse, such as `acme-corp`).
    static func phrases(_ query: String) -> String {
        query.split(whereSeparator: { $0.isWhitespace }).map {
            "\"" + $0.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }.joined(separator: " ")
    }

    /// The hit for `inode` if it still has a name and `caller` may read it by that name: search
    /// permission on every directory above it and read permission on the file, as opening it
    /// through a mount would need (the caller's role in the workspace is checked before).
    private func readableHit(
        inode: InodeID, workspace: Workspace, version: Int64, score: Double, caller: Caller
    ) throws(FSError) -> SearchHit? {
        let held = heldOwnership(of: inode)
        return try store.read { db -> SearchHit? in
            guard let file = try NamespaceQueries.inode(db, inode)?.holding(held), caller.mayRead(file),
                let v = try HistoryQueries.version(db, id: version)
            else { return nil }
            var names: [[UInt8]] = []
            var current = inode
            while current != workspace.root {
                guard let (parent, name) = try ChangeQueries.binding(db, inode: current, at: Int64.max),
                    let directory = try NamespaceQueries.inode(db, parent), caller.maySearch(directory)
                else { return nil }
                names.insert(name, at: 0)
                current = parent
                if names.count > 4096 { return nil }  // not below this workspace's root
            }
            return SearchHit(
                workspace: workspace.name, path: Self.display(names), version: v.id, actor: v.actor, time: v.time,
                snippet: "", score: score, inode: inode)
        }
    }

    /// How far the index is behind the store.
    public func indexStatus() throws(FSError) -> IndexStatus {
        let index = try requireIndex()
        let store = try self.store.readCommitted { db in try Indexer.storeCursor(db) }
        let (cursor, formats, bytes) = try index.read { db in
            (
                try SearchIndex.cursor(db),
                Dictionary(
                    uniqueKeysWithValues: try db.rows("SELECT format, count(*) FROM docs GROUP BY format").map {
                        ($0[0] as String, $0[1] as Int64)
                    }),
                try db.value(Int64.self, "SELECT coalesce(sum(bytes), 0) FROM docs") ?? 0
            )
        }
        return IndexStatus(
            storeSeq: store.events, indexedSeq: cursor.events,
            backlog: max(0, store.events - cursor.events) + max(0, store.versions - cursor.versions),
            files: formats.values.reduce(0, +), textBytes: bytes, formats: formats,
            pdftotextInstalled: ExtractedText.pdftotext != nil,
            lastError: indexer.withLock { $0?.lastError.withLock { $0 } })
    }

    /// Starts keeping the index current in the background (the daemon). `CAIRN_INDEX=off` in
    /// the environment leaves it off (for measuring what it costs).
    public func startIndexing() {
        guard let searchIndex, store.isWritable, ProcessInfo.processInfo.environment["CAIRN_INDEX"] != "off" else {
            return
        }
        indexer.withLock { running in
            guard running == nil else { return }
            let made = Indexer(fs: self, index: searchIndex)
            made.start()
            running = made
        }
    }

    /// Brings the index up to date in this process (the CLI when no daemon runs); `progress`
    /// gets the changes taken in so far and the total.
    public func updateIndex(progress: (Int64, Int64) -> Void = { _, _ in }) throws(FSError) {
        try Indexer(fs: self, index: try requireIndex()).catchUp(progress: progress)
    }

    /// Throws the index away: it is rebuilt from the first change, in the background by a
    /// running daemon, or by `updateIndex`.
    public func resetIndex() throws(FSError) {
        try requireIndex().reset()
    }
}

extension Caller {
    /// Search (execute) permission on a directory by the mode bits, as the kernel checks it.
    func maySearch(_ attrs: InodeAttributes) -> Bool {
        if uid == 0 { return attrs.mode & 0o111 != 0 }
        if uid == attrs.uid { return attrs.mode & 0o100 != 0 }
        if isMember(of: attrs.gid) { return attrs.mode & 0o010 != 0 }
        return attrs.mode & 0o001 != 0
    }
}
