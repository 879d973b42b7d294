import BrokerCore
import PostgresNIO

/// Client keys, as in SQLite; creating or revoking one bumps the configuration version so every broker
/// reloads its keys, and recording uses does not.
extension PostgresStore {
    /// Adds a client key with the SHA-256 of its secret (never the secret itself).
    public func createClientKey(_ key: ClientKey, secretHash: [UInt8]) async throws {
        let methods = key.methods.joined(separator: ",")
        try await self.pool.withTransaction("create a client key") { session in
            try await session.execute(
                """
                INSERT INTO client_keys (id, name, tenant, methods, secret_hash, created_at)
                VALUES (\(key.id), \(key.name), \(key.tenant), \(methods), \(ByteBuffer(bytes: secretHash)), \(key.createdAt))
                """
            )
            try await Self.bumpConfiguration(session: session)
        }
    }

    /// Every client key, oldest first, without its hash.
    public func clientKeys() async throws -> [ClientKey] {
        try await self.hashedClientKeys().map(\.key)
    }

    /// Every client key with its secret's hash, oldest first (ties by id in byte order, as in SQLite).
    public func hashedClientKeys() async throws -> [HashedClientKey] {
        let rows = try await self.pool.withSession("read the client keys") { session in
            try await session.query(
                "SELECT id, name, tenant, methods, created_at, last_used_at, secret_hash FROM client_keys ORDER BY created_at, id COLLATE \"C\""
            )
        }
        return try rows.map { row in
            let (id, name, tenant, methods, createdAt, lastUsedAt, secretHash) = try row.decode((String, String?, String, String, Int64, Int64?, ByteBuffer).self)
            let key = ClientKey(
                id: id,
                name: name,
                tenant: tenant,
                methods: methods.split(separator: ",").map(String.init),
                createdAt: createdAt,
                lastUsedAt: lastUsedAt
            )
            return HashedClientKey(key: key, secretHash: Array(secretHash.readableBytesView))
        }
    }

    /// Removes the client key with this id; returns whether there was one.
    public func revokeClientKey(id: String) async throws -> Bool {
        try await self.pool.withTransaction("revoke a client key") { session in
            let removed = try await !session.query("DELETE FROM client_keys WHERE id = \(id) RETURNING 1").isEmpty
            if removed { try await Self.bumpConfiguration(session: session) }
            return removed
        }
    }

    /// Records when keys were last used, in one statement that locks their rows in id order (brokers
    /// flushing the same keys at once never deadlock); a stored time never moves back.
    public func recordClientKeyUses(_ uses: [String: Int64]) async throws {
        guard !uses.isEmpty else { return }
        let pairs = Array(uses)
        let (ids, times) = (pairs.map(\.key), pairs.map(\.value))
        try await self.pool.withSession("record client key uses") { session in
            try await session.execute(
                """
                WITH uses AS (
                    SELECT * FROM unnest(\(ids)::text[], \(times)::int8[]) AS u (id, used_at)
                ), locked AS (
                    SELECT k.id FROM client_keys k JOIN uses u ON k.id = u.id ORDER BY k.id FOR UPDATE OF k
                )
                UPDATE client_keys k SET last_used_at = greatest(k.last_used_at, u.used_at)
                FROM uses u WHERE k.id = u.id AND k.id IN (SELECT id FROM locked)
                """
            )
        }
    }
}
