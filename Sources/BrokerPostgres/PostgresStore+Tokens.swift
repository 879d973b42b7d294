import BrokerCore
import PostgresNIO

/// Reading stored tokens. Their stamps are Unix seconds on the database's clock, so that brokers whose
/// clocks disagree still agree on when a token expires; a read selects the database's time with the
/// rows and moves each stamp onto the caller's wall clock (`stamp - databaseNow + callerNow`). The
/// caller's clock is read as the query is sent and as its answer comes, and `callerNow` is the
/// midpoint: under load a query can wait seconds for a connection, and a stamp moved by the whole wait
/// would put other brokers' refreshes early by as much (a retry inside the refresh window's lower
/// edge); the midpoint errs by at most half the wait either way, well inside the serving margin.
extension PostgresStore {
    /// The stored token for one key, if unexpired at `now` (caller's clock), readable and servable.
    public func token(for key: TokenKey, expiringAfter now: Int64) async throws -> StoredToken? {
        let sent = self.clock.unixNow()
        let rows = try await self.pool.withSession("read a token") { session in
            try await session.query(
                """
                SELECT tenant_id, region, token, issued_at, expires_at, revision, generation, extract(epoch FROM clock_timestamp())::float8
                FROM credentials WHERE tenant_id = \(key.tenant) AND region = \(key.region) AND token IS NOT NULL
                """
            )
        }
        let callerNow = (sent + self.clock.unixNow()) / 2
        guard let row = rows.first else { return nil }
        guard case .servable(let token) = try self.storedToken(row, now: now, callerNow: callerNow) else { return nil }
        return token
    }

    /// The stored, servable tokens of `keys` that expire after `now` (caller's clock), in one query:
    /// what a broker following the others reads for a batch of notifications.
    public func tokens(for keys: [TokenKey], expiringAfter now: Int64) async throws -> [StoredToken] {
        guard !keys.isEmpty else { return [] }
        let sent = self.clock.unixNow()
        let rows = try await self.pool.withSession("read tokens") { session in
            try await session.query(
                """
                SELECT c.tenant_id, c.region, c.token, c.issued_at, c.expires_at, c.revision, c.generation, extract(epoch FROM clock_timestamp())::float8
                FROM credentials c JOIN unnest(\(keys.map(\.tenant))::text[], \(keys.map(\.region))::text[]) AS k (tenant_id, region)
                    ON c.tenant_id = k.tenant_id AND c.region = k.region
                WHERE c.token IS NOT NULL
                """
            )
        }
        let callerNow = (sent + self.clock.unixNow()) / 2
        return try rows.compactMap { row in
            guard case .servable(let token) = try self.storedToken(row, now: now, callerNow: callerNow) else { return nil }
            return token
        }
    }

    /// Every stored, servable token that expires after `now` (caller's clock). Rows that cannot be
    /// opened are reported, not fatal.
    public func loadTokens(expiringAfter now: Int64) async throws -> (tokens: [StoredToken], unreadable: [TokenKey]) {
        let sent = self.clock.unixNow()
        // The database filters with a second to spare; the exact test is `storedToken`'s.
        let margin = Double(now) - sent - 1
        let rows = try await self.pool.withSession("read the tokens") { session in
            try await session.query(
                """
                SELECT tenant_id, region, token, issued_at, expires_at, revision, generation, now_epoch
                FROM credentials, (SELECT extract(epoch FROM clock_timestamp())::float8 AS now_epoch) n
                WHERE token IS NOT NULL AND expires_at - now_epoch > \(margin)
                """
            )
        }
        let callerNow = (sent + self.clock.unixNow()) / 2
        var tokens: [StoredToken] = []
        var unreadable: [TokenKey] = []
        for row in rows {
            switch try self.storedToken(row, now: now, callerNow: callerNow) {
            case .servable(let token): tokens.append(token)
            case .unreadable(let key, _): unreadable.append(key)
            case .unservable: break
            }
        }
        return (tokens, unreadable)
    }

    enum TokenRead {
        case servable(StoredToken)
        /// Expired at `now`, or stamps or value that `IssuedToken.isServable` refuses.
        case unservable
        case unreadable(TokenKey, SealingError)
    }

    /// Opens and checks a row of (tenant_id, region, token, issued_at, expires_at, revision,
    /// generation, database now).
    func storedToken(_ row: PostgresRow, now: Int64, callerNow: Double) throws -> TokenRead {
        let (tenant, region, sealed, issued, expires, revision, generation, databaseNow) =
            try row.decode((String, String, ByteBuffer, Double?, Double?, Int64, Int64, Double).self)
        return self.openToken(
            key: TokenKey(tenant: tenant, region: region),
            sealed: sealed,
            issued: issued,
            expires: expires,
            revision: revision,
            generation: generation,
            databaseNow: databaseNow,
            now: now,
            callerNow: callerNow
        )
    }

    /// Rebases a stored token's stamps to the caller's clock, then checks and opens it as SQLite does:
    /// in whole seconds, unexpired at `now`, and servable by `IssuedToken.isServable`.
    func openToken(
        key: TokenKey,
        sealed: ByteBuffer,
        issued: Double?,
        expires: Double?,
        revision: Int64,
        generation: Int64,
        databaseNow: Double,
        now: Int64,
        callerNow: Double
    ) -> TokenRead {
        let issuedAt = (issued ?? .nan) - databaseNow + callerNow
        let expiresAt = (expires ?? .nan) - databaseNow + callerNow
        guard let issuedSeconds = Self.unixSeconds(issuedAt), let expiresSeconds = Self.unixSeconds(expiresAt), expiresSeconds > now else {
            return .unservable
        }
        let value: String
        do throws(SealingError) {
            value = try self.sealer.openString(Array(sealed.readableBytesView), for: SecretBinding(tenant: key.tenant, region: key.region, field: .token))
        } catch {
            return .unreadable(key, error)
        }
        guard IssuedToken.isServable(storedValue: value, issuedAt: issuedSeconds, expiresAt: expiresSeconds, now: now) else { return .unservable }
        return .servable(StoredToken(key: key, value: value, issuedAt: issuedAt, expiresAt: expiresAt, revision: revision, generation: generation))
    }
}
