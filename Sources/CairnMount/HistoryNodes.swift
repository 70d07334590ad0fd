import CairnCore
import FuseKit
import Synchronization

/// The node ids of `.cairn` and everything under it. They come from a range of their own (from
/// 2^62; inode ids never get there), so the kernel's caches and the hard-link detection of
/// `cp -a` and `tar` never mix a view of the past with the live tree. A node of a past tree is
/// (view, inode), computed, so the same file in the same view always has the same id: bits 40
/// and up number the view (its seq, in the order views were first used), the low 40 bits are
/// the inode id.
final class HistoryNodes: Sendable {
    enum Node: Hashable, Sendable {
        /// `.cairn` in the workspace root.
        case cairn
        /// `.cairn/at`: its entries are points in time.
        case at
        /// `.cairn/snapshots`: its entries are the workspace's snapshots.
        case snapshots
        /// A node of the tree as it was at `seq`.
        case past(seq: Int64, inode: InodeID)
        /// `.cairn/versions/…`: a live directory, mirrored (`.cairn/versions` is the root's).
        case mirror(InodeID)
        /// `.cairn/versions/<path>/` of a file: one entry per version of the name.
        case fileVersions(parent: InodeID, name: [UInt8])
        /// One version, as a read-only file.
        case version(Int64)
    }

    static let cairnName = Array(".cairn".utf8)
    static let cairnID: InodeNumber = 1 << 62
    static let atID: InodeNumber = cairnID + 1
    static let snapshotsID: InodeNumber = cairnID + 2
    /// Handles of files opened in a view, apart from the core's handles.
    static let firstHandle: UInt64 = 1 << 62
    private static let inodeBits = 40

    /// View numbers at the top of the range tag the nodes of `.cairn/versions`.
    private static let mirrorTag: UInt64 = (1 << 22) - 1
    private static let versionTag: UInt64 = (1 << 22) - 2
    private static let fileVersionsTag: UInt64 = (1 << 22) - 3
    private static let lowMask: UInt64 = (1 << 40) - 1

    private struct State {
        var seqs: [Int64] = []
        var views: [Int64: Int] = [:]
        /// The (directory, name) pairs of `fileVersions` nodes, numbered as first met.
        var names: [(parent: InodeID, name: [UInt8])] = []
        var nameNumbers: [[UInt8]: [InodeID: Int]] = [:]
        var handles: [UInt64: VersionRecord] = [:]
        /// A past directory's entries, read once at opendir (a listing is served in many small
        /// batches; finding each batch's place again in the database would cost the whole
        /// directory every time).
        var listings: [UInt64: [DirectoryEntry]] = [:]
        var nextHandle = HistoryNodes.firstHandle
    }

    private let state = Mutex(State())

    static func contains(_ id: InodeNumber) -> Bool { id >= cairnID }

    func node(_ id: InodeNumber) -> Node? {
        switch id {
        case Self.cairnID: return .cairn
        case Self.atID: return .at
        case Self.snapshotsID: return .snapshots
        default:
            guard Self.contains(id) else { return nil }
            let low = id & Self.lowMask
            switch (id - Self.cairnID) >> Self.inodeBits {
            case Self.mirrorTag: return .mirror(InodeID(low))
            case Self.versionTag: return .version(Int64(low))
            case Self.fileVersionsTag:
                return state.withLock { s in
                    s.names.indices.contains(Int(low))
                        ? .fileVersions(parent: s.names[Int(low)].parent, name: s.names[Int(low)].name) : nil
                }
            default: break
            }
            let view = Int((id - Self.cairnID) >> Self.inodeBits) - 1
            let inode = InodeID(id & ((1 << Self.inodeBits) - 1))
            guard let seq = state.withLock({ s in s.seqs.indices.contains(view) ? s.seqs[view] : nil }) else {
                return nil
            }
            return .past(seq: seq, inode: inode)
        }
    }

    func id(_ node: Node) throws(FSError) -> InodeNumber {
        switch node {
        case .cairn: return Self.cairnID
        case .at: return Self.atID
        case .snapshots: return Self.snapshotsID
        case .past(let seq, let inode):
            guard inode < 1 << Self.inodeBits else { throw FSError.io("inode \(inode) is beyond views of the past") }
            let view = state.withLock { s in
                if let view = s.views[seq] { return view }
                s.seqs.append(seq)
                s.views[seq] = s.seqs.count - 1
                return s.seqs.count - 1
            }
            guard UInt64(view + 1) < Self.fileVersionsTag else { throw FSError.io("too many views of the past") }
            return Self.cairnID | (UInt64(view + 1) << Self.inodeBits) | UInt64(inode)
        case .mirror(let inode):
            return try Self.tagged(Self.mirrorTag, UInt64(inode))
        case .version(let id):
            return try Self.tagged(Self.versionTag, UInt64(id))
        case .fileVersions(let parent, let name):
            let number = state.withLock { s in
                if let n = s.nameNumbers[name]?[parent] { return n }
                s.names.append((parent, name))
                s.nameNumbers[name, default: [:]][parent] = s.names.count - 1
                return s.names.count - 1
            }
            return try Self.tagged(Self.fileVersionsTag, UInt64(number))
        }
    }

    private static func tagged(_ tag: UInt64, _ low: UInt64) throws(FSError) -> InodeNumber {
        guard low <= lowMask else { throw FSError.io("\(low) is beyond the node ids of .cairn/versions") }
        return cairnID | tag << inodeBits | low
    }

    func open(_ version: VersionRecord) -> UInt64 {
        state.withLock { s in
            let handle = s.nextHandle
            s.nextHandle += 1
            s.handles[handle] = version
            return handle
        }
    }

    func version(ofHandle handle: UInt64) -> VersionRecord? { state.withLock { $0.handles[handle] } }

    func open(listing: [DirectoryEntry]) -> UInt64 {
        state.withLock { s in
            let handle = s.nextHandle
            s.nextHandle += 1
            s.listings[handle] = listing
            return handle
        }
    }

    func listing(ofHandle handle: UInt64) -> [DirectoryEntry]? { state.withLock { $0.listings[handle] } }

    func release(_ handle: UInt64) {
        state.withLock { s in
            s.handles.removeValue(forKey: handle)
            s.listings.removeValue(forKey: handle)
        }
    }
}
