import CairnCore
import FuseKit
import Synchronization

/// The node ids of `.cairn` and everything under it. They come from a range of their own (from
/// 2^62; inode ids never get there), so the kernel's caches and the hard-link detection of
/// `cp -a` and `tar` never mix a view of the past with the live tree. Bits 40 to 61 say what a
/// node is, the low 40 bits which: for a node of a past tree, (view, inode), computed, so the
/// same file in the same view always has the same id (bits 40 and up number the view: its seq,
/// in the order views were first used); the top values of bits 40–61 tag the other kinds, whose
/// low bits hold a workspace root, an inode, a version or a numbered name.
final class HistoryNodes: Sendable {
    enum Node: Hashable, Sendable {
        /// `.cairn` in the root of the workspace whose root directory is `root`.
        case cairn(root: InodeID)
        /// `.cairn/at`: its entries are points in time.
        case at(root: InodeID)
        /// `.cairn/snapshots`: its entries are the workspace's snapshots.
        case snapshots(root: InodeID)
        /// A node of the tree as it was at `seq`.
        case past(seq: Int64, inode: InodeID)
        /// `.cairn/versions/…`: a live directory, mirrored (`.cairn/versions` is the root's).
        case mirror(InodeID)
        /// `.cairn/versions/<path>/` of a file: one entry per version of the name.
        case fileVersions(parent: InodeID, name: [UInt8])
        /// One version, as a read-only file.
        case version(Int64)
        /// `.cairn/locks`: the locks held on the workspace's files, as text made at open.
        case locks(root: InodeID)
        /// `.cairn/events`: the workspace's changes from the open on, one JSON line each; reads
        /// wait for the next change.
        case events(root: InodeID)
        /// `.cairn/search`: any full-text query is a name in it.
        case search(root: InodeID)
        /// `.cairn/search/<query>/`: the hits, best first, as symlinks to the files.
        case query(root: InodeID, text: [UInt8])
        /// One hit in the workspace whose root is `root`: a symlink whose target is `target`.
        case hit(root: InodeID, target: [UInt8])
    }

    static let cairnName = Array(".cairn".utf8)
    /// The first id of the range.
    static let first: InodeNumber = 1 << 62
    /// Handles of files opened in a view, apart from the core's handles.
    static let firstHandle: UInt64 = 1 << 62
    private static let inodeBits = 40

    /// The values of bits 40–61 that tag kinds of nodes (past views count up from 1 below them).
    private enum Tag: UInt64 {
        case mirror = 4_194_303  // (1 << 22) - 1
        case version = 4_194_302
        case fileVersions = 4_194_301
        case cairn = 4_194_300
        case at = 4_194_299
        case snapshots = 4_194_298
        case locks = 4_194_297
        case events = 4_194_296
        case search = 4_194_295
        case query = 4_194_294
        case hit = 4_194_293
        /// The lowest tag: views of the past are numbered below it.
        static let lowest = Tag.hit
    }
    private static let lowMask: UInt64 = (1 << 40) - 1

    private struct State {
        var seqs: [Int64] = []
        var views: [Int64: Int] = [:]
        /// The (directory, name) pairs of `fileVersions` nodes, search queries (workspace root,
        /// query) and hit targets, numbered as first met.
        var names = Numbering<Pair>()
        var queries = Numbering<Pair>()
        var targets = Numbering<Pair>()
        var handles: [UInt64: VersionRecord] = [:]
        /// A past directory's entries, read once at opendir (a listing is served in many small
        /// batches; finding each batch's place again in the database would cost the whole
        /// directory every time).
        var listings: [UInt64: [DirectoryEntry]] = [:]
        /// Files made at open (`.cairn/locks`).
        var texts: [UInt64: [UInt8]] = [:]
        /// Readers of `.cairn/events`.
        var feeds: [UInt64: EventCursor] = [:]
        var nextHandle = HistoryNodes.firstHandle
    }

    private let state = Mutex(State())

    static func contains(_ id: InodeNumber) -> Bool { id >= first }

    func node(_ id: InodeNumber) -> Node? {
        guard Self.contains(id) else { return nil }
        let low = id & Self.lowMask
        let high = (id - Self.first) >> Self.inodeBits
        switch Tag(rawValue: high) {
        case .mirror?: return .mirror(InodeID(low))
        case .version?: return .version(Int64(low))
        case .cairn?: return .cairn(root: InodeID(low))
        case .at?: return .at(root: InodeID(low))
        case .snapshots?: return .snapshots(root: InodeID(low))
        case .locks?: return .locks(root: InodeID(low))
        case .events?: return .events(root: InodeID(low))
        case .search?: return .search(root: InodeID(low))
        case .query?:
            return state.withLock { s in s.queries.value(Int(low)).map { .query(root: $0.inode, text: $0.name) } }
        case .hit?:
            return state.withLock { s in s.targets.value(Int(low)).map { .hit(root: $0.inode, target: $0.name) } }
        case .fileVersions?:
            return state.withLock { s in s.names.value(Int(low)).map { .fileVersions(parent: $0.inode, name: $0.name) }
            }
        case nil:
            guard high > 0 else { return nil }
            return state.withLock { s in
                s.seqs.indices.contains(Int(high) - 1) ? .past(seq: s.seqs[Int(high) - 1], inode: InodeID(low)) : nil
            }
        }
    }

    func id(_ node: Node) throws(FSError) -> InodeNumber {
        switch node {
        case .cairn(let root): return try Self.tagged(.cairn, UInt64(root))
        case .at(let root): return try Self.tagged(.at, UInt64(root))
        case .snapshots(let root): return try Self.tagged(.snapshots, UInt64(root))
        case .locks(let root): return try Self.tagged(.locks, UInt64(root))
        case .events(let root): return try Self.tagged(.events, UInt64(root))
        case .search(let root): return try Self.tagged(.search, UInt64(root))
        case .query(let root, let text):
            return try Self.tagged(.query, UInt64(state.withLock { $0.queries.number(Pair(inode: root, name: text)) }))
        case .hit(let root, let target):
            return try Self.tagged(.hit, UInt64(state.withLock { $0.targets.number(Pair(inode: root, name: target)) }))
        case .mirror(let inode): return try Self.tagged(.mirror, UInt64(inode))
        case .version(let id): return try Self.tagged(.version, UInt64(id))
        case .past(let seq, let inode):
            guard UInt64(inode) <= Self.lowMask else { throw FSError.io("inode \(inode) is beyond views of the past") }
            let view = state.withLock { s in
                if let view = s.views[seq] { return view }
                s.seqs.append(seq)
                s.views[seq] = s.seqs.count - 1
                return s.seqs.count - 1
            }
            guard UInt64(view + 1) < Tag.lowest.rawValue else { throw FSError.io("too many views of the past") }
            return Self.first | (UInt64(view + 1) << Self.inodeBits) | UInt64(inode)
        case .fileVersions(let parent, let name):
            let number = state.withLock { $0.names.number(Pair(inode: parent, name: name)) }
            return try Self.tagged(.fileVersions, UInt64(number))
        }
    }

    struct Pair: Hashable {
        var inode: InodeID
        var name: [UInt8]
    }

    /// Values numbered 0, 1, … in the order they are first met.
    struct Numbering<Value: Hashable> {
        private var values: [Value] = []
        private var numbers: [Value: Int] = [:]

        mutating func number(_ value: Value) -> Int {
            if let known = numbers[value] { return known }
            values.append(value)
            numbers[value] = values.count - 1
            return values.count - 1
        }

        func value(_ number: Int) -> Value? { values.indices.contains(number) ? values[number] : nil }
    }

    /// The id of `.cairn/snapshots` of the workspace whose root is `root`.
    static func snapshotsID(root: InodeID) -> InodeNumber? { try? tagged(.snapshots, UInt64(root)) }

    private static func tagged(_ tag: Tag, _ low: UInt64) throws(FSError) -> InodeNumber {
        guard low <= lowMask else { throw FSError.io("\(low) is beyond the node ids of .cairn") }
        return first | tag.rawValue << inodeBits | low
    }

    /// A new handle, with what it reads stored by `keep`.
    private func allocate(_ keep: (inout State, UInt64) -> Void) -> UInt64 {
        state.withLock { s in
            let handle = s.nextHandle
            s.nextHandle += 1
            keep(&s, handle)
            return handle
        }
    }

    func open(_ version: VersionRecord) -> UInt64 { allocate { $0.handles[$1] = version } }

    func version(ofHandle handle: UInt64) -> VersionRecord? { state.withLock { $0.handles[handle] } }

    func open(listing: [DirectoryEntry]) -> UInt64 { allocate { $0.listings[$1] = listing } }

    func listing(ofHandle handle: UInt64) -> [DirectoryEntry]? { state.withLock { $0.listings[handle] } }

    func open(text: [UInt8]) -> UInt64 { allocate { $0.texts[$1] = text } }

    func text(ofHandle handle: UInt64) -> [UInt8]? { state.withLock { $0.texts[handle] } }

    func open(feed: EventCursor) -> UInt64 { allocate { $0.feeds[$1] = feed } }

    func feed(ofHandle handle: UInt64) -> EventCursor? { state.withLock { $0.feeds[handle] } }

    func release(_ handle: UInt64) {
        state.withLock { s in
            s.handles.removeValue(forKey: handle)
            s.listings.removeValue(forKey: handle)
            s.texts.removeValue(forKey: handle)
            s.feeds.removeValue(forKey: handle)
        }
    }
}
