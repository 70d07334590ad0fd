import CairnCore
import CairnTestSupport
import Foundation
import GRDB
import Testing

@Suite struct StoreTests {
    @Test func createsAStoreWithADefaultWorkspace() throws {
        let t = try TemporaryStore()
        let names = try t.store.workspaces().map(\.name)
        #expect(names == ["default"])
        let root = try t.fs.getattr(t.root)
        #expect(root.isDirectory)
        #expect(root.nlink == 2)
    }

    @Test func refusesAMissingStoreWithAClearMessage() {
        #expect {
            _ = try Store.open(at: "/nonexistent/cairn-store")
        } throws: { error in
            "\(error)".contains("cairn init")
        }
    }

    @Test func refusesASecondInitOnTheSameDirectory() throws {
        let t = try TemporaryStore()
        #expect(throws: StoreError.self) { try Store.create(at: t.store.path, owner: (0, 0)) }
    }

    @Test func refusesANewerFormatAndUnknownFeatures() throws {
        let t = try TemporaryStore()
        t.store.close()
        let db = try DatabaseQueue(path: t.store.path + "/cairn.db")
        try db.write { try $0.execute(sql: "UPDATE meta SET value = '99' WHERE key = 'format_version'") }
        #expect { _ = try Store.open(at: t.store.path) } throws: { "\($0)".contains("newer than this cairn supports") }
        try db.write {
            try $0.execute(sql: "UPDATE meta SET value = '1' WHERE key = 'format_version'")
            try $0.execute(sql: "UPDATE meta SET value = 'time-travel' WHERE key = 'features_incompatible'")
        }
        #expect { _ = try Store.open(at: t.store.path) } throws: { "\($0)".contains("time-travel") }
        try db.close()
    }

    @Test func aStoreWhoseBlobsPrecedeStorageOrderAndPacksKeepsEveryChunkWhenMigrated() throws {
        let t = try TemporaryStore()
        // Small (a pack now; its row before schema v11), and a blob file (beyond the threshold).
        let contents = [
            Array(String(repeating: "hello ", count: 60).utf8), pseudoRandomBytes(20_000, seed: 1),
            pseudoRandomBytes(200_000, seed: 2),
        ]
        let files = try contents.enumerated().map { try t.fs.writeFile(t.root, "f\($0.offset)", $0.element).id }
        t.fs.closeAudit()
        t.store.close()
        let db = try DatabaseQueue(path: t.store.path + "/cairn.db")
        // Rows, rows with data, and (since v11) rows naming a pack.
        func blobRows(packs: Bool = true) throws -> [Int] {
            try db.read {
                try Int.fetchAll(
                    $0,
                    sql: "SELECT count(*) FROM blobs UNION ALL SELECT count(data) FROM blobs"
                        + (packs ? " UNION ALL SELECT count(pack) FROM blobs" : ""))
            }
        }
        #expect(try blobRows() == [3, 0, 2])
        // The table as stores before schema v10 have it: ordered by digest, small chunks in
        // their rows (taken back out of the packs here).
        let packed = try db.read {
            try Row.fetchAll($0, sql: "SELECT digest, pack, pack_offset, size FROM blobs WHERE pack IS NOT NULL")
        }
        try db.write { db in
            try db.execute(
                sql: """
                    CREATE TABLE by_digest (
                        digest BLOB PRIMARY KEY NOT NULL, size INTEGER NOT NULL, data BLOB, stored_ns INTEGER NOT NULL
                    ) WITHOUT ROWID;
                    INSERT INTO by_digest SELECT digest, size, data, stored_ns FROM blobs;
                    DROP TABLE blobs;
                    ALTER TABLE by_digest RENAME TO blobs;
                    DELETE FROM grdb_migrations WHERE identifier IN ('v10-blobs-in-storage-order', 'v11-packed-chunks');
                    UPDATE meta SET value = 'chunked-manifests' WHERE key = 'features_incompatible';
                    """)
            for row in packed {
                let pack = try Data(
                    contentsOf: URL(fileURLWithPath: t.store.path + "/packs/\(row["pack"] as Int64).pack"))
                let start = Int(row["pack_offset"] as Int64)
                try db.execute(
                    sql: "UPDATE blobs SET data = ? WHERE digest = ?",
                    arguments: [pack[start..<(start + (row["size"] as Int))], row["digest"] as Data])
            }
        }
        try FileManager.default.removeItem(atPath: t.store.path + "/packs")
        #expect(try blobRows(packs: false) == [3, 2])
        let store = try Store.open(at: t.store.path)
        let fs = try FileSystem(store: store)
        for (inode, bytes) in zip(files, contents) { #expect(try fs.readFile(inode) == bytes) }
        #expect(try store.check(verifyBlobs: true).isEmpty)
        fs.closeAudit()
        store.close()
        #expect(try blobRows() == [3, 2, 0])
        let table = try db.read { try String.fetchOne($0, sql: "SELECT sql FROM sqlite_master WHERE name = 'blobs'") }
        #expect(table?.contains("WITHOUT ROWID") == false)
        let index = try db.read {
            try String.fetchOne($0, sql: "SELECT sql FROM sqlite_master WHERE name = 'blobs_by_digest'")
        }
        #expect(index?.contains("UNIQUE") == true)
        let features = try db.read {
            try String.fetchOne($0, sql: "SELECT value FROM meta WHERE key = 'features_incompatible'")
        }
        #expect(features == "chunked-manifests,packed-chunks")
        try db.close()
    }

    /// Stores from before schema v12 number their rows with AUTOINCREMENT; the migration drops
    /// it and keeps the highest id each table ever handed out, also one whose row is gone.
    @Test func aStoreWithAutoincrementIdsMigratesAndNeverHandsAnIdOutAgain() throws {
        let t = try TemporaryStore()
        let a = try t.fs.writeFile(t.root, "a", Array("one".utf8))
        let before = try t.fs.history(of: "a", in: t.workspace)
        t.fs.closeAudit()
        t.store.close()
        let path = t.store.path + "/cairn.db"
        let tables = ["inodes", "dentries", "versions", "manifests", "events"]
        let list = tables.map { "'\($0)'" }.joined(separator: ", ")
        var db = try DatabaseQueue(path: path)
        let indexes = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name IN (\(list)) ORDER BY name"
        let indexesBefore = try db.read { try Row.fetchAll($0, sql: indexes) }
        try db.writeWithoutTransaction { db in
            // The audit table as it was then, in cairn.db (v12 rebuilds it; v15 moves its rows).
            try db.execute(sql: "CREATE TABLE audit (\(Self.auditColumns(autoincrement: true)))")
            try db.execute(sql: "PRAGMA writable_schema = ON")
            try db.execute(
                sql: """
                    UPDATE sqlite_master SET sql = replace(sql, 'INTEGER PRIMARY KEY', 'INTEGER PRIMARY KEY AUTOINCREMENT')
                    WHERE type = 'table' AND name IN (\(list))
                    """)
            try db.execute(sql: "PRAGMA writable_schema = OFF")
        }
        try db.close()
        db = try DatabaseQueue(path: path)
        // Each table handed out ten ids more than its rows show (its newest rows deleted since).
        var highest: [String: Int64] = [:]
        try db.write { db in
            for table in tables {
                let key = table == "events" ? "seq" : "id"
                let top = try #require(try Int64.fetchOne(db, sql: "SELECT max(\(key)) FROM \(table)")) + 10
                try db.execute(sql: "INSERT INTO sqlite_sequence(name, seq) VALUES (?, ?)", arguments: [table, top])
                highest[table] = top
            }
            // v12 and every migration after it run again, in order.
            try db.execute(
                sql: """
                    DELETE FROM grdb_migrations WHERE identifier IN
                        ('v12-ids-without-autoincrement', 'v13-embedded-chunks', 'v14-versions-released',
                         'v15-audit-database')
                    """)
            try db.execute(sql: "ALTER TABLE inodes DROP COLUMN versions_released")
            try db.execute(
                sql: "UPDATE meta SET value = 'chunked-manifests,packed-chunks' WHERE key = 'features_incompatible'")
        }
        let store = try Store.open(at: t.store.path)
        let fs = try FileSystem(store: store)
        #expect(try fs.readFile(a.id) == Array("one".utf8))
        #expect(try fs.history(of: "a", in: t.workspace) == before)
        let b = try fs.writeFile(t.root, "b", Array("two".utf8))
        let version = try #require(try fs.history(of: "b", in: t.workspace).last)
        #expect(b.id > highest["inodes"]! && version.id > highest["versions"]! && version.seq > highest["events"]!)
        #expect(try store.check(verifyBlobs: true).isEmpty)
        fs.closeAudit()
        store.close()
        try db.read { db in
            let schemas = try String.fetchAll(
                db, sql: "SELECT sql FROM sqlite_master WHERE type = 'table' AND name IN (\(list))")
            #expect(schemas.count == tables.count && schemas.allSatisfy { !$0.contains("AUTOINCREMENT") })
            #expect(try Row.fetchAll(db, sql: indexes) == indexesBefore)
            let features = try String.fetchOne(
                db, sql: "SELECT value FROM meta WHERE key = 'features_incompatible'")
            #expect(features == "chunked-manifests,packed-chunks,id-placeholders,embedded-chunks,audit-database")
        }
        try db.close()
    }

    /// The audit table's columns as schema v9 made them in cairn.db.
    static func auditColumns(autoincrement: Bool) -> String {
        """
        id INTEGER PRIMARY KEY\(autoincrement ? " AUTOINCREMENT" : ""), time_ns INTEGER NOT NULL, actor TEXT NOT NULL,
        uid INTEGER NOT NULL, pid INTEGER NOT NULL, process TEXT NOT NULL, op TEXT NOT NULL, workspace TEXT, path TEXT,
        version INTEGER, bytes INTEGER, result TEXT NOT NULL, hash BLOB NOT NULL
        """
    }

    /// Stores from before schema v15 keep the audit log's rows in cairn.db: the migration moves
    /// them to audit.db with their ids and hashes, and the chain goes on from the last of them.
    @Test func auditRowsMoveToTheirOwnDatabaseAndTheChainGoesOn() throws {
        let t = try TemporaryStore()
        try t.fs.writeFile(t.root, "a", Array("one".utf8))
        try t.fs.unlink(parent: t.root, name: Array("a".utf8), caller: .tester)
        t.fs.closeAudit()
        t.store.close()
        let auditPath = t.store.path + "/audit.db"
        let audit = try DatabaseQueue(path: auditPath)
        let rows = try audit.read { try Row.fetchAll($0, sql: "SELECT * FROM audit ORDER BY id") }
        try audit.close()
        #expect(rows.count >= 3)
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: auditPath + suffix) }
        // The store as schema v14 left it: the rows in cairn.db, no audit.db.
        let db = try DatabaseQueue(path: t.store.path + "/cairn.db")
        try db.write { db in
            try db.execute(sql: "CREATE TABLE audit (\(Self.auditColumns(autoincrement: false)))")
            for row in rows {
                try db.execute(
                    sql: "INSERT INTO audit VALUES (\(Array(repeating: "?", count: 13).joined(separator: ", ")))",
                    arguments: StatementArguments(row.databaseValues.map { $0 as (any DatabaseValueConvertible)? }))
            }
            try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'v15-audit-database'")
            try db.execute(
                sql: """
                    UPDATE meta SET value = replace(replace(value, 'audit-database,', ''), ',audit-database', '')
                    WHERE key = 'features_incompatible'
                    """)
        }
        // A reader of the store before its daemon has migrated it finds the rows where they are.
        let reader = try Store.open(at: t.store.path, readOnly: true)
        #expect(try FileSystem(readOnly: reader).auditRecords(limit: 1000).count == rows.count)
        reader.close()
        let store = try Store.open(at: t.store.path)
        let fs = try FileSystem(store: store)
        let moved = try fs.auditRecords(limit: 1000)
        #expect(moved.map(\.id).sorted() == rows.map { $0["id"] as Int64 })
        try fs.writeFile(t.root, "b", Array("two".utf8))
        fs.closeAudit()
        let verified = try fs.verifyAudit()
        #expect(verified.intact && verified.rows > rows.count, "\(verified)")
        store.close()
        try db.read { db in
            #expect(try !db.tableExists("audit"))
            let features = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'features_incompatible'")
            #expect(features?.split(separator: ",").contains("audit-database") == true)
        }
        try db.close()
    }

    /// A file created and renamed in one batch of the audit log (a lock file made the index,
    /// as git does) is named as it is now in later records, not as its create named it.
    @Test func auditRowsNameAFileRenamedAfterItsCreateByItsNewName() throws {
        let t = try TemporaryStore()
        let file = try t.fs.writeFile(t.root, "index.lock", Array("v1".utf8))
        try t.fs.rename(
            parent: t.root, name: Array("index.lock".utf8), newParent: t.root, newName: Array("index".utf8),
            options: [], caller: .tester)
        t.fs.flushAudit()
        try t.fs.setxattr(file.id, name: Array("user.k".utf8), value: Array("v".utf8), flags: [], caller: .tester)
        t.fs.flushAudit()
        let rows = try t.fs.auditRecords(ops: ["create", "setxattr"])
        #expect(rows.map(\.op) == ["setxattr", "create"])
        #expect(rows.map(\.path) == ["index", "index.lock"])
    }

    @Test func fsckReportsADamagedAuditLog() throws {
        let t = try TemporaryStore()
        try t.fs.writeFile(t.root, "a", Array("one".utf8))
        t.fs.closeAudit()
        t.store.close()
        let intact = try Store.open(at: t.store.path, readOnly: true)
        #expect(try intact.check(verifyBlobs: false).isEmpty)
        intact.close()
        let path = t.store.path + "/audit.db"
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        try Data(repeating: 0x5A, count: 8192).write(to: URL(fileURLWithPath: path))
        let store = try Store.open(at: t.store.path, readOnly: true)
        defer { store.close() }
        let problems = try store.check(verifyBlobs: false)
        #expect(problems.count == 1)
        #expect(problems.first?.kind == .databaseIntegrity && problems.first?.detail.hasPrefix("audit.db: ") == true)
    }

    @Test func refusesACorruptDatabaseWithAClearMessage() throws {
        let t = try TemporaryStore()
        t.store.close()
        let path = t.store.path + "/cairn.db"
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        try Data(repeating: 0x5A, count: 8192).write(to: URL(fileURLWithPath: path))
        #expect { _ = try Store.open(at: t.store.path) } throws: { "\($0)".contains("damaged") }
    }

    @Test func fsckFindsAFlippedByteAMissingChunkAndADanglingEntry() throws {
        let t = try TemporaryStore()
        let big = pseudoRandomBytes(3 * t.store.chunkSize, seed: 9)
        try t.fs.writeFile(t.root, "big", big)
        #expect(try t.store.check().isEmpty)
        let blobs = t.store.path + "/blobs"
        var files: [String] = []
        for dir in try FileManager.default.contentsOfDirectory(atPath: blobs) where dir.count == 2 {
            files += try FileManager.default.contentsOfDirectory(atPath: blobs + "/" + dir).map {
                blobs + "/" + dir + "/" + $0
            }
        }
        #expect(files.count == 3)
        // Flip one byte of the first blob, remove the second.
        chmod(files[0], 0o644)
        var bytes = try Data(contentsOf: URL(fileURLWithPath: files[0]))
        bytes[100] ^= 0xFF
        try bytes.write(to: URL(fileURLWithPath: files[0]))
        try FileManager.default.removeItem(atPath: files[1])
        let problems = try t.store.check()
        let corrupt = problems.filter { $0.kind == .corruptChunk }
        let missing = problems.filter { $0.kind == .missingChunk }
        #expect(corrupt.count == 1 && corrupt[0].detail.contains(URL(fileURLWithPath: files[0]).lastPathComponent))
        #expect(missing.count == 1 && missing[0].detail.contains(URL(fileURLWithPath: files[1]).lastPathComponent))
        #expect(missing[0].versions.count >= 1)
        t.store.close()
        let db = try DatabaseQueue(path: t.store.path + "/cairn.db")
        try db.write {
            try $0.execute(
                sql: "INSERT INTO dentries(parent, name, inode, created_seq) VALUES (?, x'6768', 999999, 1)",
                arguments: [t.root])
        }
        try db.close()
        let reopened = try Store.open(at: t.store.path, readOnly: true)
        defer { reopened.close() }
        #expect(
            try reopened.check(verifyBlobs: false).contains {
                $0.kind == .danglingEntry && $0.detail.contains("999999")
            })
    }

    @Test func closingAStoreEndsItsAuditLogFirstAndLaterOperationsFailCleanly() throws {
        let t = try TemporaryStore()
        for i in 0..<50 { try t.fs.writeFile(t.root, "f\(i)", Array("\(i)".utf8)) }
        // Closed with the audit log's thread still running and records queued.
        t.store.close()
        #expect(throws: FSError.readOnly) {
            try t.fs.mkdir(parent: t.root, name: Array("late".utf8), mode: 0o755, caller: .tester)
        }
        let db = try DatabaseQueue(path: t.store.path + "/audit.db")
        defer { try? db.close() }
        let closes = try db.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM audit WHERE op = 'write'") }
        #expect(closes == 50, "every queued record was written before the store closed")
    }
}
