import Foundation
import Glibc

/// One change as a line of JSON: what `cairn watch --json` prints and `.cairn/events` streams.
public struct EventLine: Sendable, Codable, Equatable {
    public var seq: Int64
    public var time: String
    public var workspace: String
    public var kind: String
    public var path: String
    public var old_path: String?
    public var actor: String
    public var version: Int64?
    public var cause: String?

    public init(_ change: ChangeRecord) {
        seq = change.seq
        time = change.time.iso8601()
        workspace = change.workspace
        kind = change.kind
        path = change.path
        old_path = change.oldPath
        actor = change.actor
        version = change.version
        cause = change.cause
    }

    /// The line, newline included (keys sorted, so lines compare as text).
    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self) + "\n"
    }
}

extension FileSystem {
    /// The last seq named consumer `name` took (nil: a consumer not seen before).
    public func consumerPosition(_ name: String) throws(FSError) -> Int64? {
        try store.read { db in try db.value(Int64.self, "SELECT seq FROM consumers WHERE name = ?", [name]) }
    }

    /// Records that consumer `name` took every event up to `seq`.
    public func setConsumerPosition(_ name: String, to seq: Int64) throws(FSError) {
        guard !name.isEmpty else { throw FSError.invalidArgument("a consumer needs a name") }
        try store.write(.journaled) { db in
            try db.run(
                "INSERT OR REPLACE INTO consumers(name, seq, updated_ns) VALUES (?, ?, ?)",
                [name, seq, Timestamp.now().nanoseconds])
        }
    }
}

/// Which events a watcher or a webhook wants: a path, a directory's tree or a glob (`*` spans
/// directories), and kinds.
public struct EventFilter: Sendable {
    public var pattern: String?
    public var kinds: Set<String>

    public init(pattern: String?, kinds: [String]) {
        self.pattern = pattern.flatMap { $0.isEmpty ? nil : $0 }
        self.kinds = Set(kinds.flatMap { $0.split(separator: ",").map(String.init) })
    }

    public func matches(_ e: ChangeRecord) -> Bool {
        if !kinds.isEmpty && !kinds.contains(e.kind) { return false }
        guard let pattern else { return true }
        return [e.path, e.oldPath].compactMap { $0 }.contains { path in
            if pattern.contains(where: { "*?[".contains($0) }) { return fnmatch(pattern, path, 0) == 0 }
            return path == pattern || path.hasPrefix(pattern + "/")
        }
    }
}
