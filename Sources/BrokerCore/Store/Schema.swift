/// The database schema as an ordered list of migrations; `PRAGMA user_version` records how many ran.
enum Schema {
    static let migrations: [String] = [
        """
        CREATE TABLE tenants (
            id TEXT PRIMARY KEY NOT NULL,
            name TEXT,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE credentials (
            tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
            region TEXT NOT NULL,
            appid TEXT NOT NULL,
            app_key BLOB NOT NULL,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            PRIMARY KEY (tenant_id, region)
        ) WITHOUT ROWID;
        CREATE TABLE tokens (
            tenant_id TEXT NOT NULL,
            region TEXT NOT NULL,
            token BLOB NOT NULL,
            issued_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            PRIMARY KEY (tenant_id, region),
            FOREIGN KEY (tenant_id, region) REFERENCES credentials(tenant_id, region) ON DELETE CASCADE
        ) WITHOUT ROWID;
        """,
        // v2: a revision per credential, so a running daemon can tell a replaced key; access rules.
        """
        ALTER TABLE credentials ADD COLUMN revision INTEGER NOT NULL DEFAULT 1;
        CREATE TABLE access_rules (
            id INTEGER PRIMARY KEY,
            subject_kind TEXT NOT NULL CHECK (subject_kind IN ('uid', 'gid')),
            subject_id INTEGER NOT NULL,
            tenant TEXT NOT NULL,
            methods TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            UNIQUE (subject_kind, subject_id, tenant)
        );
        """,
        // v3: the master-key version `key rotate` re-sealed everything with. A writer that loaded an
        // older keyring finds it here, inside its write transaction, and writes nothing.
        """
        CREATE TABLE sealing_key (
            singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
            key_id INTEGER NOT NULL
        );
        """,
        // v4: a generation per credential, bumped with every token stored for it: a reader that
        // holds a newer one knows a read it started earlier is out of date.
        """
        ALTER TABLE credentials ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
        """,
        // v5: revisions come from one counter for the whole store, so a credential removed and added
        // again gets a revision above any it had: a fetch started under the old one is recognised.
        """
        CREATE TABLE revision_counter (
            singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
            value INTEGER NOT NULL
        );
        INSERT INTO revision_counter (singleton, value) SELECT 1, coalesce(max(revision), 0) FROM credentials;
        """,
        // v6: client keys for the HTTP proxy's TCP callers, each stored as the SHA-256 of its secret.
        """
        CREATE TABLE client_keys (
            id TEXT PRIMARY KEY NOT NULL,
            name TEXT,
            tenant TEXT NOT NULL,
            methods TEXT NOT NULL,
            secret_hash BLOB NOT NULL CHECK (length(secret_hash) = 32),
            created_at INTEGER NOT NULL,
            last_used_at INTEGER
        ) WITHOUT ROWID;
        """,
    ]

    /// Applies every migration the database has not seen yet, each in its own transaction.
    static func migrate(_ connection: SQLiteConnection) throws {
        let applied = try connection.userVersion
        guard applied <= Self.migrations.count else {
            throw StoreError.newerSchema(found: applied, supported: Self.migrations.count)
        }
        for version in applied..<Self.migrations.count {
            try connection.transaction {
                try connection.execute(Self.migrations[version])
                // PRAGMA cannot take bound parameters; the value is our own integer.
                try connection.execute("PRAGMA user_version = \(version + 1)")
            }
        }
    }
}
