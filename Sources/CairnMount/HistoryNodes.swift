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
    }

    static let cairnName = Array(".cairn".utf8)
    static let cairnID: InodeNumber = 1 << 62
    static let atID: InodeNumber = cairnID + 1
    static let snapshotsID: InodeNumber = cairnID + 2
    /// Handles of files opened in a view, apart from the core's handles.
    static let firstHandle: UInt64 = 1 << 62
    private static let inodeBits = 40

    private struct State {
        var seqs: [Int64] = []
        var views: [Int64: Int] = [:]
        var handles: [UInt64: VersionRecord] = [:]
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
            return Self.cairnID | (UInt64(view + 1) << Self.inodeBits) | UInt64(inode)
        }
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

    func release(_ handle: UInt64) { _ = state.withLock { $0.handles.removeValue(forKey: handle) } }
}
