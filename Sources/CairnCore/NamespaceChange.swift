/// A change made to the namespace or to an inode, named the way caches hold them: front ends
/// that cache names and attributes (the kernel, for a mount) drop what a change makes stale.
public enum NamespaceChange: Sendable, Hashable {
    /// A name in a directory appeared, vanished or now names another inode.
    case entry(parent: InodeID, name: [UInt8])
    /// A name was removed (unlink, rmdir): watchers of the directory hear of it (IN_DELETE).
    case removed(parent: InodeID, child: InodeID, name: [UInt8])
    /// An inode's attributes or content changed.
    case inode(InodeID)
    /// A snapshot of the workspace whose root is `root` was taken or deleted.
    case snapshot(root: InodeID, name: [UInt8])
}
