import BrokerCore
import PostgresNIO

extension PostgresStore {
    /// Rows per multi-row statement: large enough that 100,000 tenants take a few dozen round trips,
    /// small enough that each statement ends well within the timeout.
    static let rowsPerStatement = 10_000

    /// Adds or replaces every tenant and credential in one transaction: all or nothing. A credential
    /// whose appid changes loses its stored token; every replaced credential's revision grows. Secrets
    /// are sealed before the transaction opens, so it stays short. With `dryRun` the same statements
    /// run and the transaction is rolled back. `progress` hears after each batch of credentials, in
    /// tenants counted in proportion to the credentials written.
    public func upsert(_ tenants: [TenantDefinition], now: Int64, dryRun: Bool, progress: UpsertProgress?) async throws -> UpsertReport {
        let sealer = try await self.writeSealer()
        let batch = try await UpsertBatch.make(tenants, sealer: sealer)
        return try await self.pool.withTransaction(dryRun ? "check the tenants" : "store the tenants", commit: !dryRun) { session in
            try await self.requireCurrentKey(sealer, session: session)
            let tenants = batch.tenants
            var existing = 0
            for range in Self.chunks(tenants.ids.count) {
                // Every part of one statement sees the table as it was before it: `existing` counts
                // the tenants this statement updates rather than adds.
                existing += try await session.query(
                    """
                    WITH u AS (
                        SELECT * FROM unnest(\(Array(tenants.ids[range]))::text[], \(Array(tenants.names[range]))::text[], \(Array(tenants.hasName[range]))::bool[])
                            AS u (id, name, has_name)
                    ),
                    written AS (
                        INSERT INTO tenants (id, name, created_at, updated_at)
                        SELECT u.id, CASE WHEN u.has_name THEN u.name END, \(now), \(now) FROM u
                        ON CONFLICT (id) DO UPDATE SET name = coalesce(excluded.name, tenants.name), updated_at = excluded.updated_at
                    )
                    SELECT count(*) FROM tenants JOIN u USING (id)
                    """
                )[0].decode(Int.self)
            }
            if !batch.appidChangedWithin.isEmpty {
                try await session.execute(
                    """
                    UPDATE credentials c SET token = NULL, issued_at = NULL, expires_at = NULL
                    FROM unnest(\(batch.appidChangedWithin.map(\.tenant))::text[], \(batch.appidChangedWithin.map(\.region))::text[]) AS u (tenant_id, region)
                    WHERE c.tenant_id = u.tenant_id AND c.region = u.region
                    """
                )
            }
            let credentials = batch.credentials
            for range in Self.chunks(credentials.tenants.count) {
                // Every written credential takes the sequence's next revision (the column's default).
                try await session.execute(
                    """
                    INSERT INTO credentials AS c (tenant_id, region, appid, app_key, created_at, updated_at)
                    SELECT u.tenant_id, u.region, u.appid, u.app_key, \(now), \(now)
                    FROM unnest(
                        \(Array(credentials.tenants[range]))::text[], \(Array(credentials.regions[range]))::text[],
                        \(Array(credentials.appids[range]))::text[], \(Array(credentials.sealedKeys[range]))::bytea[]
                    ) AS u (tenant_id, region, appid, app_key)
                    ON CONFLICT (tenant_id, region) DO UPDATE SET
                        appid = excluded.appid, app_key = excluded.app_key, updated_at = excluded.updated_at,
                        revision = excluded.revision,
                        token = CASE WHEN c.appid = excluded.appid THEN c.token END,
                        issued_at = CASE WHEN c.appid = excluded.appid THEN c.issued_at END,
                        expires_at = CASE WHEN c.appid = excluded.appid THEN c.expires_at END
                    """
                )
                progress?(tenants.ids.count * range.upperBound / credentials.tenants.count)
            }
            try await Self.bumpConfiguration(session: session)
            let added = tenants.ids.count - existing
            return UpsertReport(tenantsAdded: added, tenantsUpdated: batch.tenantWrites - added, credentialsWritten: batch.credentialWrites)
        }
    }

    /// Every tenant with its regions, appids and stored-token expiry (on the caller's clock), ordered by
    /// id then region, byte by byte as in SQLite whatever the database's collation.
    public func summaries() async throws -> [TenantSummary] {
        let callerNow = self.clock.unixNow()
        let rows = try await self.pool.withSession("list the tenants") { session in
            try await session.query(
                """
                SELECT t.id, t.name, c.region, c.appid,
                    CASE WHEN c.token IS NOT NULL THEN c.expires_at - extract(epoch FROM clock_timestamp())::float8 END
                FROM tenants t LEFT JOIN credentials c ON c.tenant_id = t.id
                ORDER BY t.id COLLATE "C", c.region COLLATE "C"
                """
            )
        }
        var tenants: [TenantSummary] = []
        for row in rows {
            let (id, name, region, appid, remaining) = try row.decode((String, String?, String?, String?, Double?).self)
            if tenants.last?.id != id {
                tenants.append(TenantSummary(id: id, name: name, regions: []))
            }
            guard let region, let appid else { continue }
            tenants[tenants.count - 1].regions.append(
                .init(region: region, appid: appid, tokenExpiresAt: remaining.flatMap { Self.unixSeconds(callerNow + $0) })
            )
        }
        return tenants
    }

    /// Removes a tenant (every region) or one region of it, with its tokens, in one transaction. A
    /// tenant left with no region is removed too, and with it the access rules that name it.
    public func remove(tenant: String, region: String?) async throws -> RemovalReport {
        try await self.pool.withTransaction("remove the tenant") { session in
            let removed = try await session.query(
                "SELECT count(*) FROM credentials WHERE tenant_id = \(tenant) AND (\(region)::text IS NULL OR region = \(region))"
            )[0].decode(Int.self)
            guard try await !session.query("SELECT 1 FROM tenants WHERE id = \(tenant) FOR UPDATE").isEmpty else {
                throw StoreError.unknownTenant(tenant)
            }
            if let region {
                guard removed > 0 else { throw StoreError.unknownRegion(tenant: tenant, region: region) }
                try await session.execute("DELETE FROM credentials WHERE tenant_id = \(tenant) AND region = \(region)")
                try await session.execute(
                    "DELETE FROM tenants WHERE id = \(tenant) AND NOT EXISTS (SELECT 1 FROM credentials WHERE tenant_id = \(tenant))"
                )
            } else {
                try await session.execute("DELETE FROM tenants WHERE id = \(tenant)")
            }
            let (rules, keys) = try await session.query(
                """
                WITH rules AS (
                    DELETE FROM access_rules WHERE tenant = \(tenant) AND NOT EXISTS (SELECT 1 FROM tenants WHERE id = \(tenant)) RETURNING 1
                ), keys AS (
                    DELETE FROM client_keys WHERE tenant = \(tenant) AND NOT EXISTS (SELECT 1 FROM tenants WHERE id = \(tenant)) RETURNING 1
                )
                SELECT (SELECT count(*) FROM rules), (SELECT count(*) FROM keys)
                """
            )[0].decode((Int, Int).self)
            try await Self.bumpConfiguration(session: session)
            return RemovalReport(credentials: removed, accessRules: rules, clientKeys: keys)
        }
    }

    /// Every credential's revision: it grows each time the credential is replaced.
    public func credentialRevisions() async throws -> [TokenKey: Int64] {
        let rows = try await self.pool.withSession("read the credential revisions") { session in
            try await session.query("SELECT tenant_id, region, revision FROM credentials")
        }
        var revisions: [TokenKey: Int64] = [:]
        revisions.reserveCapacity(rows.count)
        for row in rows {
            let (tenant, region, revision) = try row.decode((String, String, Int64).self)
            revisions[TokenKey(tenant: tenant, region: region)] = revision
        }
        return revisions
    }

    /// Which of `candidates` are stored with exactly the given app_key, compared in memory; a stored
    /// key that cannot be opened counts as different.
    public func credentialsWithSameAppKey(_ candidates: [TokenKey: String]) async throws -> Set<TokenKey> {
        let rows = try await self.pool.withSession("compare the app keys") { session in
            try await session.query("SELECT tenant_id, region, app_key FROM credentials")
        }
        let sealer = self.sealer
        var same: Set<TokenKey> = []
        for row in rows {
            let (tenant, region, sealed) = try row.decode((String, String, ByteBuffer).self)
            let key = TokenKey(tenant: tenant, region: region)
            guard let candidate = candidates[key] else { continue }
            let binding = SecretBinding(tenant: tenant, region: region, field: .appKey)
            if let stored = try? sealer.openString(Array(sealed.readableBytesView), for: binding), stored == candidate { same.insert(key) }
        }
        return same
    }

    /// The (tenant, region) keys of one tenant's credentials, ordered by region.
    public func credentialKeys(ofTenant tenant: String) async throws -> [TokenKey] {
        let rows = try await self.pool.withSession("read the tenant's regions") { session in
            try await session.query("SELECT region FROM credentials WHERE tenant_id = \(tenant) ORDER BY region COLLATE \"C\"")
        }
        return try rows.map { TokenKey(tenant: tenant, region: try $0.decode(String.self)) }
    }

    /// Index ranges of at most `rowsPerStatement` rows covering `count` rows.
    static func chunks(_ count: Int) -> [Range<Int>] {
        stride(from: 0, to: count, by: Self.rowsPerStatement).map { $0..<min($0 + Self.rowsPerStatement, count) }
    }

    /// Whole Unix seconds (rounded down), or nil for a stamp no clock can read (NaN, infinite, or
    /// beyond Int64: `double precision` columns can hold any of those).
    static func unixSeconds(_ seconds: Double) -> Int64? {
        Int64(exactly: seconds.rounded(.down))
    }
}
