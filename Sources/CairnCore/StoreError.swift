/// Why a store cannot be created or opened. Each message says what to do.
public enum StoreError: Error, CustomStringConvertible, Sendable {
    case missing(path: String)
    case notPermitted(path: String, owner: UInt32?)
    case alreadyExists(path: String)
    case notAStore(path: String)
    case corrupt(path: String, detail: String)
    case newerFormat(path: String, found: Int, supported: Int)
    case unknownFeatures(path: String, features: [String])
    case migrationNeedsSpace(path: String)
    case io(String)

    public var description: String {
        switch self {
        case .missing(let path):
            "no Cairn store at \(path); create one with `cairn init` (or set CAIRN_STORE to an existing store)"
        case .notPermitted(let path, let owner):
            "you may not use the store at \(path) (\(owner.map { "it belongs to uid \($0) and " } ?? "")it is private); run as its owner, or use a store of your own (--store or CAIRN_STORE)"
        case .alreadyExists(let path):
            "a Cairn store already exists at \(path); use it, or choose another path with --store"
        case .notAStore(let path):
            "\(path) exists but is not a Cairn store (no cairn.db); choose an empty or new directory"
        case .corrupt(let path, let detail):
            "the store at \(path) is damaged: \(detail). Run `cairn fsck` on it; restore from a backup if that fails"
        case .newerFormat(let path, let found, let supported):
            "the store at \(path) has format \(found), newer than this cairn supports (\(supported)); upgrade cairn"
        case .unknownFeatures(let path, let features):
            "the store at \(path) uses features this cairn does not know (\(features.joined(separator: ", "))); upgrade cairn"
        case .migrationNeedsSpace(let path):
            "the store at \(path) needs an upgrade of its database, and the disk under it is too full for the upgrade's copy (about twice the database's size in free space); free some space and retry. Nothing was changed"
        case .io(let detail): detail
        }
    }
}
