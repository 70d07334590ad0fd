internal import GRDB

extension FSError {
    /// The one place database errors become filesystem errors. A constraint failure that reaches
    /// here is a bug in a check done earlier, so it is reported as such, not as EEXIST.
    init(database error: any Error) {
        if let fs = error as? FSError {
            self = fs
            return
        }
        if let db = error as? DatabaseError {
            switch db.resultCode {
            case .SQLITE_FULL: self = .noSpace
            case .SQLITE_CORRUPT, .SQLITE_NOTADB:
                self = .io("the store database is corrupt (\(db.message ?? "")); run `cairn fsck`")
            default: self = .io("database: \(db)")
            }
            return
        }
        self = .io("\(error)")
    }
}
