import BrokerCore
import PostgresNIO

/// The PostgreSQL schema as an ordered list of migrations, each a list of statements. The table
/// `sobot_broker_schema` records which ran; each runs in its own transaction under an advisory lock,
/// so brokers that start at once apply every migration exactly once.
enum PostgresSchema {
    /// The advisory lock key migrations hold ("sobot" in ASCII).
    static let lockKey: Int64 = 0x73_6f_62_6f_74

    static let migrations: [[String]] = [
        // v1. Each token lives on its credential's row: the sealed value, its stamps (Unix seconds on
        // the database's clock), the generation counting the tokens stored for the key, and the
        // refresh lease, so that taking a lease, storing a token and fencing off a stale fetch are each
        // one statement on one row. `changed_xid` is the last writer's transaction id: see `changes(since:)`.
        [
            """
            CREATE TABLE tenants (
                id text PRIMARY KEY,
                name text,
                created_at bigint NOT NULL,
                updated_at bigint NOT NULL
            )
            """,
            """
            CREATE TABLE credentials (
                tenant_id text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                region text NOT NULL,
                appid text NOT NULL,
                app_key bytea NOT NULL,
                revision bigint NOT NULL DEFAULT 1,
                created_at bigint NOT NULL,
                updated_at bigint NOT NULL,
                token bytea,
                issued_at double precision,
                expires_at double precision,
                generation bigint NOT NULL DEFAULT 0,
                lease_owner text,
                lease_until timestamptz,
                refreshed_by text,
                refreshed_at timestamptz,
                changed_xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
                PRIMARY KEY (tenant_id, region)
            )
            """,
            "CREATE INDEX credentials_changed_xid ON credentials (changed_xid)",
            """
            CREATE FUNCTION sobot_broker_stamp_changed_xid() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                NEW.changed_xid := pg_current_xact_id();
                RETURN NEW;
            END
            $$
            """,
            """
            CREATE TRIGGER credentials_changed_xid BEFORE UPDATE ON credentials
            FOR EACH ROW EXECUTE FUNCTION sobot_broker_stamp_changed_xid()
            """,
            """
            CREATE TABLE access_rules (
                id bigserial PRIMARY KEY,
                subject_kind text NOT NULL CHECK (subject_kind IN ('uid', 'gid')),
                subject_id bigint NOT NULL,
                tenant text NOT NULL,
                methods text NOT NULL,
                created_at bigint NOT NULL,
                UNIQUE (subject_kind, subject_id, tenant)
            )
            """,
            // The master-key version `key rotate` re-sealed everything with: writers check it, FOR
            // SHARE, inside their transaction, and write nothing when it is newer than theirs.
            """
            CREATE TABLE sealing_key (
                singleton int PRIMARY KEY CHECK (singleton = 1),
                key_id bigint NOT NULL
            )
            """,
            // Bumped, with a notification, by every transaction that changes tenants, credentials
            // (other than their token and lease columns) or access rules.
            """
            CREATE TABLE configuration_version (
                singleton int PRIMARY KEY CHECK (singleton = 1),
                version bigint NOT NULL,
                changed_xid xid8 NOT NULL
            )
            """,
            "INSERT INTO configuration_version (singleton, version, changed_xid) VALUES (1, 0, pg_current_xact_id())",
            // One row per running broker, written by its heartbeat. `key_ids` are bigint because master
            // key versions are UInt32, beyond int's range.
            """
            CREATE TABLE brokers (
                id text PRIMARY KEY,
                host text NOT NULL,
                pid int NOT NULL,
                version text NOT NULL,
                key_ids bigint[] NOT NULL,
                started_at timestamptz NOT NULL,
                last_seen timestamptz NOT NULL
            )
            """,
        ],
        // v2. Revisions come from one sequence, so a credential removed and added again gets a revision
        // above any it had: a fetch started under the old one is recognised, on every broker.
        [
            "CREATE SEQUENCE credential_revision AS bigint",
            "SELECT setval('credential_revision', coalesce((SELECT max(revision) FROM credentials), 0) + 1, false)",
            "ALTER TABLE credentials ALTER COLUMN revision SET DEFAULT nextval('credential_revision')",
        ],
        // v3. Client keys for the HTTP proxy's TCP callers, each stored as the SHA-256 of its secret.
        // Creating or revoking one bumps the configuration version; recording a use does not.
        [
            """
            CREATE TABLE client_keys (
                id text PRIMARY KEY,
                name text,
                tenant text NOT NULL,
                methods text NOT NULL,
                secret_hash bytea NOT NULL CHECK (octet_length(secret_hash) = 32),
                created_at bigint NOT NULL,
                last_used_at bigint
            )
            """
        ],
    ]

    /// Applies every migration the database has not seen, one transaction each. Throws
    /// `StoreError.newerSchema` for a database migrated by a newer sobot-broker.
    static func migrate(_ pool: BoundedPool) async throws {
        while try await pool.withTransaction("migrate the schema", { try await Self.applyNext($0) }) {}
    }

    /// Applies the next migration, if any; returns whether it applied one.
    private static func applyNext(_ session: Session) async throws -> Bool {
        try await session.execute("SELECT pg_advisory_xact_lock(\(Self.lockKey))")
        try await session.execute("CREATE TABLE IF NOT EXISTS sobot_broker_schema (version int PRIMARY KEY, applied_at timestamptz NOT NULL)")
        let rows = try await session.query("SELECT coalesce(max(version), 0) FROM sobot_broker_schema")
        let applied = try rows[0].decode(Int.self)
        guard applied <= Self.migrations.count else {
            throw StoreError.newerSchema(found: applied, supported: Self.migrations.count)
        }
        guard applied < Self.migrations.count else { return false }
        for statement in Self.migrations[applied] {
            try await session.execute(PostgresQuery(unsafeSQL: statement))
        }
        try await session.execute("INSERT INTO sobot_broker_schema (version, applied_at) VALUES (\(applied + 1), now())")
        return true
    }
}
