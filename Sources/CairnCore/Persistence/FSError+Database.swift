internal import GRDB
internal import GRDBSQLite

extension FSError {
    /// The one place database errors become filesystem errors. A constraint failure that reaches
    /// here is a bug in a check done earlier, so it is reported as such, not as EEXIST.
    init(database error: any Error) {
        if let fs = error as? FSError {
            self = fs
            return
        }
        if let db = error as? SQLiteError {
            self.init(sqliteCode: db.primaryCode, message: db.message, detail: "\(db)")
            return
        }
        if let db = error as? DatabaseError {
            self.init(sqliteCode: db.resultCode.primaryResultCode.rawValue, message: db.message ?? "", detail: "\(db)")
            return
        }
        self = .io("\(error)")
    }

    private init(sqliteCode: Int32, message: String, detail: String) {
        switch sqliteCode {
        case SQLITE_FULL: self = .noSpace
        case SQLITE_CORRUPT, SQLITE_NOTADB:
            self = .io("the store database is corrupt (\(message)); run `cairn fsck`")
        default: self = .io("database: \(detail)")
        }
    }
}
