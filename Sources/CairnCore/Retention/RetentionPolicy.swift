import Foundation

/// Which versions of a workspace's files history keeps. Counted back from now: every version
/// younger than `keepAll`; then, until `hourly`, the last version of each hour; then, until
/// `daily`, the last version of each day (UTC); older ones go. Whatever their age, a file's
/// current version, a version an open file or an unfinished write session uses, and the
/// version each snapshot shows are kept. A nil window is unbounded ("forever").
///
/// Retention thins file contents only: directories, symlinks and other nodes keep every
/// version (they cost a row each). A view of the past inside a thinned period shows the
/// nearest older version kept.
public struct RetentionPolicy: Sendable, Codable, Equatable, CustomStringConvertible {
    /// Seconds.
    public var keepAll: Int64?
    public var hourly: Int64?
    public var daily: Int64?

    public init(keepAll: Int64?, hourly: Int64?, daily: Int64?) {
        self.keepAll = keepAll
        self.hourly = hourly
        self.daily = daily
    }

    public static let `default` = RetentionPolicy(keepAll: 86_400, hourly: 7 * 86_400, daily: 30 * 86_400)

    public var description: String {
        "keep every version for \(Self.format(keepAll)), one per hour for \(Self.format(hourly)), "
            + "one per day for \(Self.format(daily))"
    }

    /// `30d`, `12h`, `90m`, `45s`, `2w`, `0`, or `forever`.
    public static func parseDuration(_ text: String) throws(FSError) -> Int64? {
        if text == "forever" { return nil }
        if text == "0" { return 0 }
        let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800]
        guard let unit = text.last.flatMap({ units[$0] }), let n = Int64(text.dropLast()), n >= 0,
            n <= Int64.max / unit / 1_000_000_000
        else {
            throw FSError.invalidArgument("'\(text)' is not a duration; use e.g. 36h, 7d, 2w, 0 or forever")
        }
        return n * unit
    }

    public static func format(_ seconds: Int64?) -> String {
        guard let seconds else { return "forever" }
        for (unit, size) in [("w", Int64(604_800)), ("d", 86_400), ("h", 3600), ("m", 60)]
        where seconds >= size && seconds % size == 0 {
            return "\(seconds / size)\(unit)"
        }
        return "\(seconds)s"
    }

    /// A window that ends before the previous one begins keeps nothing of its own.
    func validate() throws(FSError) {
        let windows = [keepAll, hourly, daily]
        for (a, b) in zip(windows, windows.dropFirst()) where a == nil && b != nil {
            throw FSError.invalidArgument("a window after an unbounded ('forever') one would keep nothing more")
        }
    }

    /// The versions of one file to keep. `versions` are sorted by seq (oldest first); `pinned`
    /// are the seqs whose version must stay (snapshots); `current` stays when `live`.
    func kept(
        _ versions: [RetainedVersion], current: Int64?, live: Bool, pinned: [Int64], now: Timestamp
    ) -> Set<Int64> {
        var keep = Set<Int64>()
        if live, let current { keep.insert(current) }
        for v in versions where !v.sealed { keep.insert(v.id) }
        for seq in pinned {
            // The version that was current at the snapshot: the last one at or before it.
            var lo = 0
            var hi = versions.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if versions[mid].seq <= seq { lo = mid + 1 } else { hi = mid }
            }
            if lo > 0 { keep.insert(versions[lo - 1].id) }
        }
        let nanos: (Int64?) -> Int64 = { $0.map { $0 > Int64.max / 1_000_000_000 ? .max : $0 * 1_000_000_000 } ?? .max }
        var lastOfBucket: [Int64: Int64] = [:]  // bucket → version id (versions come in seq order)
        for v in versions {
            let age = now.nanoseconds - v.time.nanoseconds
            if age <= nanos(keepAll) {
                keep.insert(v.id)
            } else if age <= nanos(hourly) {
                lastOfBucket[v.time.nanoseconds / 3_600_000_000_000] = v.id
            } else if age <= nanos(daily) {
                // Day buckets are negative so they never meet hour buckets.
                lastOfBucket[-1 - v.time.nanoseconds / 86_400_000_000_000] = v.id
            }
        }
        keep.formUnion(lastOfBucket.values)
        return keep
    }
}

/// What retention needs to know of a version.
struct RetainedVersion {
    var id: Int64
    var seq: Int64
    var time: Timestamp
    var sealed: Bool
}
