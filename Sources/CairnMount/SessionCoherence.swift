import CairnCore
import Dispatch
import FuseKit
import Synchronization

/// Keeps the kernel caches of every mount of a store coherent with changes made through the
/// others. Each mount lets the kernel cache names and attributes for a long time (`ttl`); when a
/// change goes through one mount, the others are told to drop what they cached of it
/// (`fuse_lowlevel_notify_inval_entry` / `_inval_inode`). Notifications are sent from a queue of
/// their own, never from the worker answering the request that made the change.
final class SessionCoherence: Sendable {
    typealias Change = NamespaceChange

    private struct Member: @unchecked Sendable {
        // SAFETY: FuseSession's notify functions are thread-safe; the strong reference keeps the
        // session alive while a notification that names it is pending.
        let session: FuseSession
        let root: InodeID
    }

    private let members = Mutex<[Int: Member]>([:])
    /// The id of the only member, while there is one (else 0): with one mount there is nobody
    /// to tell about its own changes, and asking the lock at every change made the workers of
    /// one mount wait for each other.
    private let soleMember = Atomic<Int>(0)
    private let nextID = Atomic<Int>(1)
    private let queue = DispatchQueue(label: "cairn.coherence")

    func reserveID() -> Int { nextID.wrappingAdd(1, ordering: .relaxed).oldValue }

    func add(_ id: Int, session: FuseSession, root: InodeID) {
        members.withLock { m in
            m[id] = Member(session: session, root: root)
            noteSoleMember(m)
        }
    }

    func remove(_ id: Int) {
        members.withLock { m in
            m.removeValue(forKey: id)
            noteSoleMember(m)
        }
    }

    private func noteSoleMember(_ m: [Int: Member]) {
        soleMember.store(m.count == 1 ? m.keys.first! : 0, ordering: .releasing)
    }

    /// Not a session: changes made by the CLI through the daemon reach every mount.
    static let outside = 0

    /// Drops one mount's cached pages of `inode`, then calls `done` (a lock's cache barrier:
    /// the grant is answered after the invalidation).
    func invalidatePages(of inode: InodeID, in sessionID: Int, then done: @escaping @Sendable () -> Void) {
        let member = members.withLock { $0[sessionID] }
        queue.async {
            if let member { member.session.invalidateInode(Self.node(inode, root: member.root)) }
            done()
        }
    }

    /// Drops one mount's cached pages of `inode` and waits until they are gone. Safe from the
    /// worker answering a write through a descriptor that bypasses the page cache: such a write
    /// holds none of the file's pages.
    func invalidatePagesNow(of inode: InodeID, in sessionID: Int) {
        let done = DispatchSemaphore(value: 0)
        invalidatePages(of: inode, in: sessionID) { done.signal() }
        done.wait()
    }

    /// Waits until every notice queued so far went out.
    func drain() { queue.sync {} }

    /// Tells every mount but `origin` about a change.
    func changed(_ change: Change, by origin: Int) {
        if origin != Self.outside, soleMember.load(ordering: .acquiring) == origin { return }
        let others = members.withLock { m in m.filter { $0.key != origin }.map(\.value) }
        guard !others.isEmpty else { return }
        queue.async {
            for member in others {
                switch change {
                case .entry(let parent, let name):
                    member.session.invalidateEntry(parent: Self.node(parent, root: member.root), name: name)
                case .inode(let inode):
                    member.session.invalidateInode(Self.node(inode, root: member.root))
                case .removed(let parent, let child, let name):
                    // Drops the name; kernels that raise IN_DELETE for it tell that mount's inotify
                    // watchers too (Linux 6.18 does not: see SEMANTICS.md).
                    member.session.notifyDelete(
                        parent: Self.node(parent, root: member.root), child: Self.node(child, root: member.root),
                        name: name)
                case .snapshot(let root, let name):
                    if let snapshots = HistoryNodes.snapshotsID(root: root) {
                        member.session.invalidateEntry(parent: snapshots, name: name)
                    }
                }
            }
        }
    }

    /// The node id of `inode` in a mount whose root is `root` (see CairnFilesystem).
    static func node(_ inode: InodeID, root: InodeID) -> InodeNumber {
        UInt64(bitPattern: inode == root ? 1 : (inode == 1 ? root : inode))
    }
}
