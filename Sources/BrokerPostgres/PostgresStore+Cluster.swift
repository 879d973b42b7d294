import BrokerCore
import PostgresNIO

/// What brokers of a cluster learn about each other: changes since they last looked, heartbeats.
extension PostgresStore {
    /// Every key whose credentials row was written since `horizon`, and whether the configuration
    /// changed, with the horizon to pass next time. A nil horizon means "everything": every row, and
    /// the configuration as changed. This is the catch-up read after a reconnect and the fallback poll.
    ///
    /// It never misses a commit. The read runs in one REPEATABLE READ snapshot, and the new horizon is
    /// that snapshot's xmin: every transaction with an older id had ended when the snapshot was taken,
    /// so its writes, if committed, are in this read; any write this read cannot see belongs to a
    /// transaction with an id at or above xmin (still running, or committed after the snapshot).
    /// Each row carries the id of its last writer (`changed_xid`, set by a trigger), so the next read,
    /// which takes every row with `changed_xid >= xmin`, sees it, whenever its transaction began and
    /// however long it ran. Rows may come twice (reads overlap); the generation tells what is new.
    public func changes(since horizon: UInt64?) async throws -> ChangeBatch {
        let begin: PostgresQuery = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
        return try await self.pool.withTransaction("read the changes", begin: begin) { session in
            // The first statement takes the transaction's snapshot, which every later one reads too.
            let xmin = try await session.query("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")[0].decode(Int64.self)
            let rows: [PostgresRow]
            let configurationChanged: Bool
            if let horizon {
                let since = String(horizon)
                rows = try await session.query("SELECT tenant_id, region, revision, generation FROM credentials WHERE changed_xid >= \(since)::xid8")
                configurationChanged = try await session.query("SELECT changed_xid >= \(since)::xid8 FROM configuration_version")[0].decode(Bool.self)
            } else {
                rows = try await session.query("SELECT tenant_id, region, revision, generation FROM credentials")
                configurationChanged = true
            }
            let tokens = try rows.map { row in
                let (tenant, region, revision, generation) = try row.decode((String, String, Int64, Int64).self)
                return TokenVersion(key: TokenKey(tenant: tenant, region: region), revision: revision, generation: generation)
            }
            return ChangeBatch(horizon: UInt64(xmin), tokens: tokens, configurationChanged: configurationChanged)
        }
    }

    /// Records that broker `id` is alive, with what it runs and the master-key versions its key file
    /// holds (what `resealAll` checks). `started_at` is kept while the same process beats.
    public func heartbeat(id: String, host: String, pid: Int32, version: String, keyIDs: [UInt32]) async throws {
        let keys = keyIDs.map { Int64($0) }
        try await self.pool.withSession("record the heartbeat") { session in
            try await session.execute(
                """
                INSERT INTO brokers AS b (id, host, pid, version, key_ids, started_at, last_seen)
                VALUES (\(id), \(host), \(pid), \(version), \(keys)::bigint[], now(), now())
                ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, version = excluded.version,
                    key_ids = excluded.key_ids, last_seen = now(),
                    started_at = CASE WHEN b.host = excluded.host AND b.pid = excluded.pid THEN b.started_at ELSE now() END
                """
            )
        }
    }

    /// The brokers whose last heartbeat is at most `seconds` old (on the database's clock), by id.
    public func members(seenWithin seconds: Double) async throws -> [ClusterMember] {
        try await self.pool.withSession("read the cluster members") { session in
            try await Self.members(session: session, seenWithin: seconds, lacking: nil)
        }
    }

    /// Removes broker `id`'s heartbeat: a broker that shuts down cleanly stops counting at once.
    public func leaveCluster(id: String) async throws {
        try await self.pool.withSession("leave the cluster") { session in
            try await session.execute("DELETE FROM brokers WHERE id = \(id)")
        }
    }

    /// The broker that stored each key's current token, for `status`.
    public func refreshers() async throws -> [TokenKey: String] {
        let rows = try await self.pool.withSession("read who refreshed the tokens") { session in
            try await session.query("SELECT tenant_id, region, refreshed_by FROM credentials WHERE refreshed_by IS NOT NULL")
        }
        var refreshers: [TokenKey: String] = [:]
        for row in rows {
            let (tenant, region, broker) = try row.decode((String, String, String).self)
            refreshers[TokenKey(tenant: tenant, region: region)] = broker
        }
        return refreshers
    }

    /// Live members, or only those whose key file lacks version `keyID`.
    static func members(session: Session, seenWithin seconds: Double, lacking keyID: UInt32?) async throws -> [ClusterMember] {
        let rows = try await session.query(
            """
            SELECT id, host, pid, version, key_ids, extract(epoch FROM now() - last_seen)::float8 FROM brokers
            WHERE last_seen > now() - \(seconds) * interval '1 second' AND (\(keyID.map { Int64($0) })::bigint IS NULL OR NOT \(keyID.map { Int64($0) }) = ANY (key_ids))
            ORDER BY id COLLATE "C"
            """
        )
        return try rows.map { row in
            let (id, host, pid, version, keys, seen) = try row.decode((String, String, Int32, String, [Int64], Double).self)
            return ClusterMember(id: id, host: host, pid: pid, version: version, keyIDs: keys.compactMap(UInt32.init(exactly:)), secondsSinceSeen: seen)
        }
    }
}

extension PostgresStore {
    /// Transactions this database has committed or rolled back since its statistics were reset:
    /// `bench` samples it twice to report the cluster's database load.
    public func transactionCount() async throws -> Int64 {
        try await self.pool.withSession("read the database's transaction count") { session in
            try await session.query(
                "SELECT (xact_commit + xact_rollback)::bigint FROM pg_stat_database WHERE datname = current_database()"
            )[0].decode(Int64.self)
        }
    }
}
