/// Why a mount or unmount cannot be done. Each message says what to do.
public enum MountError: Error, CustomStringConvertible, Sendable {
    case mountpointMissing(String)
    case notADirectory(String)
    case alreadyMounted(String)
    case notPermitted(String, detail: String)
    case insideStore(String)
    case unknownOption(String)
    case notMounted(String)
    case daemonExiting
    case daemon(String)

    public var description: String {
        switch self {
        case .mountpointMissing(let p): "mountpoint \(p) does not exist; create it with `mkdir -p \(p)`"
        case .notADirectory(let p): "mountpoint \(p) is not a directory; choose an empty directory"
        case .alreadyMounted(let p):
            "\(p) is already a mountpoint; unmount it first (`cairn unmount \(p)`) or choose another"
        case .notPermitted(let p, let detail):
            "cannot mount on \(p): \(detail). Run as root, or make sure /dev/fuse is usable and you own \(p)"
        case .insideStore(let p): "\(p) and the store must not contain each other (the daemon would wait on itself)"
        case .unknownOption(let o):
            "unknown mount option '\(o)'; supported: ro, rw, allow_other, allow_root, fsname=, subtype=, [no]dev, [no]suid, [no]exec, [no]atime, sync, async, dirsync"
        case .notMounted(let p): "\(p) is not mounted by this store's daemon"
        case .daemonExiting: "the store's daemon is exiting (its last mount ended); retry"
        case .daemon(let detail): detail
        }
    }
}
