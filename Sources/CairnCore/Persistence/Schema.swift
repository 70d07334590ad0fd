internal import GRDB

/// The store's schema. Migrations are append-only: a shipped migration is never edited; a change
/// is a new migration. Each migration is plain DDL and never refers to Swift record types.
///
/// Consistency rules (checked by `Store.check`, used by fsck and the tests):
///  1. Every live dentry names an existing inode, and its parent is a directory inode.
///  2. At most one live dentry per (parent, name) (enforced by `dentries_live`).
///  3. A regular file's inode row names a version of that inode, whose manifest exists.
///  4. Every chunk a manifest names has a `blobs` row; inline chunks carry their bytes there,
///     the others exist in the blob store.
///  5. Inode ids and event seqs are never reused (AUTOINCREMENT).
enum Schema {
    static func migrator() -> DatabaseMigrator {
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
        return migrator
    }
}
