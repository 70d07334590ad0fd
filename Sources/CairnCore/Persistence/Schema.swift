internal import GRDB

/// The store's schema. Migrations are append-only: a shipped migration is never edited; a change
/// is a new migration. Each migration is plain DDL and never refers to Swift record types.
///
/// Consistency rules (checked by `Store.check`, used by fsck and the tests):
///  1. Every live dentry names an existing inode, and its parent is a directory inode.
///  2. At most one live dentry per (parent, name) (enforced by `dentries_live`).
///  3. A regular file's inode row names a version of that inode, whose manifest exists, or no
///     version (a file `create` made, until its first close: it is empty).
///  4. Every chunk a manifest names has a `blobs` row; inline chunks carry their bytes there,
///     the others exist in the blob store.
///  5. Row ids (inodes, dentries, versions, manifests) and event seqs are never reused: when the
///     row with the highest id is deleted, a placeholder keeps its id (`GCQueries.delete`).
enum Schema {
    /// `storePath`: the store's directory, for the databases beside cairn.db.
    static func migrator(storePath: String) -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-namespace-versions-blobs") { db in
            try db.execute(
                sql: """
                    CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);

                    -- Every inode that ever existed. Rows are never deleted while history refers
                    -- to them; `nlink` 0 means no live name.
                    CREATE TABLE inodes (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        mode INTEGER NOT NULL,
                        uid INTEGER NOT NULL,
                        gid INTEGER NOT NULL,
                        nlink INTEGER NOT NULL,
                        size INTEGER NOT NULL DEFAULT 0,
                        stored_bytes INTEGER NOT NULL DEFAULT 0,
                        atime_ns INTEGER NOT NULL,
                        mtime_ns INTEGER NOT NULL,
                        ctime_ns INTEGER NOT NULL,
                        btime_ns INTEGER NOT NULL,
                        rdev INTEGER NOT NULL DEFAULT 0,
                        target BLOB,
                        version INTEGER,
                        generation INTEGER NOT NULL DEFAULT 1,
                        workspace INTEGER
                    );

                    CREATE TABLE workspaces (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        name TEXT NOT NULL UNIQUE,
                        root INTEGER NOT NULL REFERENCES inodes(id),
                        owner_uid INTEGER NOT NULL,
                        created_ns INTEGER NOT NULL
                    );

                    -- Names are BLOBs (any byte but '/' and NUL). A rename or unlink closes the
                    -- row (deleted_seq) instead of deleting it: the namespace keeps its history.
                    CREATE TABLE dentries (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        parent INTEGER NOT NULL,
                        name BLOB NOT NULL,
                        inode INTEGER NOT NULL,
                        created_seq INTEGER NOT NULL,
                        deleted_seq INTEGER
                    );
                    CREATE UNIQUE INDEX dentries_live ON dentries(parent, name) WHERE deleted_seq IS NULL;
                    CREATE INDEX dentries_listing ON dentries(parent, id) WHERE deleted_seq IS NULL;
                    CREATE INDEX dentries_by_inode ON dentries(inode);
                    CREATE INDEX dentries_history ON dentries(parent, name, created_seq);

                    CREATE TABLE manifests (id INTEGER PRIMARY KEY AUTOINCREMENT, data BLOB NOT NULL);

                    -- Immutable once sealed. An unsealed version belongs to an open write session
                    -- whose fsyncs update it in place; close seals it.
                    CREATE TABLE versions (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        inode INTEGER NOT NULL,
                        seq INTEGER NOT NULL,
                        size INTEGER NOT NULL,
                        mode INTEGER NOT NULL,
                        uid INTEGER NOT NULL,
                        gid INTEGER NOT NULL,
                        mtime_ns INTEGER NOT NULL,
                        ctime_ns INTEGER NOT NULL,
                        manifest INTEGER REFERENCES manifests(id),
                        xattrs BLOB,
                        actor TEXT NOT NULL,
                        cause TEXT NOT NULL,
                        sealed INTEGER NOT NULL DEFAULT 1
                    );
                    CREATE INDEX versions_by_inode ON versions(inode, seq);

                    -- One row per stored chunk. `data` holds inline chunks; NULL means the blob
                    -- store has it. Inserted in the transaction that first references it.
                    CREATE TABLE blobs (
                        digest BLOB PRIMARY KEY NOT NULL,
                        size INTEGER NOT NULL,
                        data BLOB,
                        stored_ns INTEGER NOT NULL
                    ) WITHOUT ROWID;

                    CREATE TABLE xattrs (
                        inode INTEGER NOT NULL,
                        name BLOB NOT NULL,
                        value BLOB NOT NULL,
                        PRIMARY KEY (inode, name)
                    ) WITHOUT ROWID;

                    -- Snapshots of an inode's xattrs, named by digest, referenced by versions.
                    CREATE TABLE xattr_sets (digest BLOB PRIMARY KEY NOT NULL, data BLOB NOT NULL) WITHOUT ROWID;

                    -- The store's clock: one row per committed change; seq only grows.
                    CREATE TABLE events (
                        seq INTEGER PRIMARY KEY AUTOINCREMENT,
                        time_ns INTEGER NOT NULL,
                        kind TEXT NOT NULL,
                        inode INTEGER,
                        parent INTEGER,
                        name BLOB,
                        old_parent INTEGER,
                        old_name BLOB,
                        version INTEGER,
                        actor TEXT NOT NULL
                    );
                    """)
        }
        migrator.registerMigration("v2-snapshots") { db in
            try db.execute(
                sql: """
                    -- A named checkpoint of a workspace: a seq with a name. The namespace and versions
                    -- of that seq stay reachable (and retention keeps them) while the row exists.
                    CREATE TABLE snapshots (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        workspace INTEGER NOT NULL REFERENCES workspaces(id),
                        name TEXT NOT NULL,
                        seq INTEGER NOT NULL,
                        created_ns INTEGER NOT NULL,
                        actor TEXT NOT NULL,
                        UNIQUE (workspace, name)
                    );
                    """)
        }
        migrator.registerMigration("v3-retention") { db in
            try db.execute(
                sql: """
                    -- The workspace's retention policy (JSON, see RetentionPolicy); NULL: the default.
                    ALTER TABLE workspaces ADD COLUMN retention TEXT;
                    -- gc asks which versions still use a manifest.
                    CREATE INDEX versions_by_manifest ON versions(manifest);
                    """)
        }
        migrator.registerMigration("v4-forks") { db in
            try db.execute(
                sql: """
                    -- A fork records its parent and the parent's seq it starts from.
                    ALTER TABLE workspaces ADD COLUMN parent INTEGER REFERENCES workspaces(id);
                    ALTER TABLE workspaces ADD COLUMN base_seq INTEGER;
                    -- A directory of a fork whose entries are still those of `origin` (an inode of
                    -- the parent) at `origin_seq`: they are copied in at its first use.
                    ALTER TABLE inodes ADD COLUMN origin INTEGER;
                    ALTER TABLE inodes ADD COLUMN origin_seq INTEGER;
                    ALTER TABLE inodes ADD COLUMN pending_entries INTEGER NOT NULL DEFAULT 0;
                    CREATE INDEX inodes_pending ON inodes(id) WHERE pending_entries = 1;
                    -- The inode a fork made of each parent inode it copied (hard links stay links).
                    CREATE TABLE fork_origins (
                        workspace INTEGER NOT NULL,
                        origin INTEGER NOT NULL,
                        inode INTEGER NOT NULL,
                        PRIMARY KEY (workspace, origin)
                    ) WITHOUT ROWID;
                    CREATE INDEX fork_origins_by_inode ON fork_origins(inode);
                    """)
        }
        migrator.registerMigration("v5-consumers") { db in
            try db.execute(
                sql: """
                    -- Where each named event consumer (cairn watch --consumer) is: the last seq it took.
                    CREATE TABLE consumers (
                        name TEXT PRIMARY KEY NOT NULL,
                        seq INTEGER NOT NULL,
                        updated_ns INTEGER NOT NULL
                    );
                    """)
        }
        migrator.registerMigration("v6-webhooks") { db in
            try db.execute(
                sql: """
                    -- An HTTP endpoint that receives the events its filters keep, in seq order, from a
                    -- durable cursor: the last seq it was given (or gave up on).
                    CREATE TABLE webhooks (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        url TEXT NOT NULL,
                        workspace INTEGER,
                        path_glob TEXT,
                        kinds TEXT,
                        secret TEXT,
                        cursor INTEGER NOT NULL,
                        created_ns INTEGER NOT NULL
                    );
                    -- The outcome of each event a webhook was sent: delivered, or dead (it kept failing).
                    CREATE TABLE webhook_deliveries (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        webhook INTEGER NOT NULL,
                        seq INTEGER NOT NULL,
                        state TEXT NOT NULL,
                        attempts INTEGER NOT NULL,
                        status INTEGER,
                        error TEXT,
                        time_ns INTEGER NOT NULL
                    );
                    CREATE INDEX webhook_deliveries_by_hook ON webhook_deliveries(webhook, id);
                    """)
        }
        migrator.registerMigration("v7-quotas") { db in
            try db.execute(
                sql: """
                    -- Limits on the bytes of current versions and the number of live inodes (NULL: none).
                    ALTER TABLE workspaces ADD COLUMN quota_bytes INTEGER;
                    ALTER TABLE workspaces ADD COLUMN quota_files INTEGER;
                    CREATE INDEX inodes_by_workspace ON inodes(workspace);
                    """)
        }
        migrator.registerMigration("v8-grants") { db in
            try db.execute(
                sql: """
                    -- Roles in a workspace: principal is uid:N, gid:N or agent:NAME; role is reader,
                    -- writer or admin.
                    CREATE TABLE grants (
                        workspace INTEGER NOT NULL,
                        principal TEXT NOT NULL,
                        role TEXT NOT NULL,
                        PRIMARY KEY (workspace, principal)
                    ) WITHOUT ROWID;
                    """)
        }
        migrator.registerMigration("v9-audit") { db in
            try db.execute(
                sql: """
                    -- Who did what: every change, every denial and (per workspace) every open for
                    -- reading. Each row's hash covers the previous row's hash and its own fields, so
                    -- changing, removing or cutting rows breaks the chain (see AuditLog).
                    CREATE TABLE audit (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        time_ns INTEGER NOT NULL,
                        actor TEXT NOT NULL,
                        uid INTEGER NOT NULL,
                        pid INTEGER NOT NULL,
                        process TEXT NOT NULL,
                        op TEXT NOT NULL,
                        workspace TEXT,
                        path TEXT,
                        version INTEGER,
                        bytes INTEGER,
                        result TEXT NOT NULL,
                        hash BLOB NOT NULL
                    );
                    ALTER TABLE workspaces ADD COLUMN audit_reads INTEGER NOT NULL DEFAULT 1;
                    """)
        }
        migrator.registerMigration("v10-blobs-in-storage-order") { db in
            try db.execute(
                sql: """
                    -- Chunks in the order they were first stored, found by digest through an index
                    -- of their own: a new chunk's bytes go to the table's last pages instead of
                    -- among the others at a random place (its digest), so a commit of many new
                    -- chunks writes their bytes to a few pages, not to one (or a split) per chunk;
                    -- only their small index entries land at random. (Existing rows keep the order
                    -- they had: sorting them would need room for all of them twice.)
                    CREATE TABLE blobs_in_order (
                        digest BLOB NOT NULL,
                        size INTEGER NOT NULL,
                        data BLOB,
                        stored_ns INTEGER NOT NULL
                    );
                    INSERT INTO blobs_in_order(digest, size, data, stored_ns)
                        SELECT digest, size, data, stored_ns FROM blobs;
                    DROP TABLE blobs;
                    ALTER TABLE blobs_in_order RENAME TO blobs;
                    CREATE UNIQUE INDEX blobs_by_digest ON blobs(digest);
                    """)
        }
        migrator.registerMigration("v11-packed-chunks") { db in
            try db.execute(
                sql: """
                    -- Small chunks live in pack files (PackFiles), not in their row: the row names
                    -- the pack and the offset. Rows of earlier stores keep their data. A binary
                    -- that knows no packs must not open the store: the feature says so.
                    ALTER TABLE blobs ADD COLUMN pack INTEGER;
                    ALTER TABLE blobs ADD COLUMN pack_offset INTEGER;
                    UPDATE meta SET value = CASE WHEN value = '' THEN 'packed-chunks'
                        ELSE value || ',packed-chunks' END
                    WHERE key = 'features_incompatible' AND instr(value, 'packed-chunks') = 0;
                    """)
        }
        migrator.registerMigration("v12-ids-without-autoincrement") { db in
            for (table, key, placeholder) in idPlaceholders {
                try rebuildWithoutAutoincrement(db, table: table, key: key, placeholder: placeholder)
            }
            try db.execute(
                sql: """
                    -- A binary that deleted the newest row without a placeholder would hand its id out again.
                    UPDATE meta SET value = CASE WHEN value = '' THEN 'id-placeholders' ELSE value || ',id-placeholders' END
                    WHERE key = 'features_incompatible' AND instr(value, 'id-placeholders') = 0;
                    """)
        }
        migrator.registerMigration("v13-embedded-chunks") { db in
            try db.execute(
                sql: """
                    -- Manifests may hold the bytes of small chunks themselves (Manifest.embeddedLimit),
                    -- which a binary that knows no such entries reads as corrupt: the feature says so.
                    UPDATE meta SET value = CASE WHEN value = '' THEN 'embedded-chunks'
                        ELSE value || ',embedded-chunks' END
                    WHERE key = 'features_incompatible' AND instr(value, 'embedded-chunks') = 0;
                    """)
        }
        migrator.registerMigration("v14-versions-released") { db in
            try db.execute(
                sql: """
                    -- Set once retention has released a version of the inode: a file with no
                    -- version at a seq was empty then (created, not yet closed) only if none was.
                    -- Regular files whose creation's version is gone already count as such.
                    ALTER TABLE inodes ADD COLUMN versions_released INTEGER NOT NULL DEFAULT 0;
                    UPDATE inodes SET versions_released = 1
                    WHERE (mode & 61440) = 32768 AND coalesce(
                        (SELECT cause FROM versions WHERE inode = inodes.id ORDER BY seq LIMIT 1), 'create') <> 'create';
                    """)
        }
        migrator.registerMigration("v15-audit-database") { db in
            // The audit rows move to audit.db (see AuditDatabase): copied there first, so that a
            // crash before this commits copies them again, never loses them. A binary that
            // looks for them here must not open the store: the feature says so.
            try AuditDatabase.adoptRows(of: db, storePath: storePath)
            try db.execute(
                sql: """
                    DROP TABLE audit;
                    UPDATE meta SET value = CASE value WHEN '' THEN 'audit-database'
                        ELSE value || ',audit-database' END
                    WHERE key = 'features_incompatible' AND instr(value, 'audit-database') = 0;
                    """)
        }
        return migrator
    }

    /// The tables a file operation inserts into, without AUTOINCREMENT: it reads and rewrites
    /// `sqlite_sequence` at every INSERT, a tenth of a small file's creation. A new row takes the
    /// highest id plus one, so an id is handed out again only if the row that had the highest id
    /// is deleted: a placeholder row takes its id then, here for rows deleted before, afterwards
    /// in `GCQueries.delete`. Each table's entry: its key, and the columns and values after the
    /// key of its placeholder (nil: the audit table keeps its chained rows forever).
    private static let idPlaceholders: [(table: String, key: String, placeholder: (String, String)?)] = [
        // A forgotten inode: no link, no version, no kind.
        ("inodes", "id", ("mode, uid, gid, nlink, atime_ns, mtime_ns, ctime_ns, btime_ns", "0, 0, 0, 0, 0, 0, 0, 0")),
        // A closed entry of no directory.
        ("dentries", "id", ("parent, name, inode, created_seq, deleted_seq", "0, X'', 0, 0, 0")),
        // An empty manifest.
        ("manifests", "id", ("data", "X'01'")),
        // A version of no inode.
        (
            "versions", "id",
            (
                "inode, seq, size, mode, uid, gid, mtime_ns, ctime_ns, actor, cause",
                "0, 0, 0, 0, 0, 0, 0, 0, 'cairn', 'placeholder'"
            )
        ),
        // Says that the events up to it were pruned.
        (
            "events", "seq",
            ("time_ns, kind, actor", "(SELECT coalesce(max(time_ns), 0) FROM events), 'pruned', 'cairn'")
        ),
        ("audit", "id", nil),
    ]

    /// Makes `table` again from its own definition without AUTOINCREMENT, with its rows, the
    /// placeholder of the highest id it handed out if that row is gone, and its indexes.
    private static func rebuildWithoutAutoincrement(
        _ db: Database, table: String, key: String, placeholder: (columns: String, values: String)?
    ) throws {
        let definition = try String.fetchOne(
            db, sql: "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", arguments: [table])!
        let indexes = try String.fetchAll(
            db, sql: "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
            arguments: [table])
        let columns = definition[definition.firstIndex(of: "(")!...].replacingOccurrences(
            of: " AUTOINCREMENT", with: "")
        try db.execute(sql: "CREATE TABLE \(table)_new \(columns)")
        try db.execute(sql: "INSERT INTO \(table)_new SELECT * FROM \(table)")
        if let placeholder {
            try db.execute(
                sql: """
                    INSERT INTO \(table)_new(\(key), \(placeholder.columns))
                        SELECT seq, \(placeholder.values) FROM sqlite_sequence
                        WHERE name = '\(table)' AND seq > (SELECT coalesce(max(\(key)), 0) FROM \(table))
                    """)
        }
        try db.execute(sql: "DROP TABLE \(table); ALTER TABLE \(table)_new RENAME TO \(table)")
        for index in indexes { try db.execute(sql: index) }
    }
}
