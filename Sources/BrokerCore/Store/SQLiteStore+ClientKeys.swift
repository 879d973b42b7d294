/// Client keys, stored as the SHA-256 of their secret.
extension SQLiteStore {
    /// Adds a client key with the SHA-256 of its secret (never the secret itself).
    public func createClientKey(_ key: ClientKey, secretHash: [UInt8]) throws {
        try self.withConnection { connection in
            try connection.statement(
                "INSERT INTO client_keys (id, name, tenant, methods, secret_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)"
            ).run([.text(key.id), key.name.sqliteValue, .text(key.tenant), .text(key.methods.joined(separator: ",")), .blob(secretHash), .integer(key.createdAt)])
        }
    }

    /// Every client key, oldest first, without its hash.
    public func clientKeys() throws -> [ClientKey] {
        try self.hashedClientKeys().map(\.key)
    }

    /// Every client key with its secret's hash, oldest first.
    public func hashedClientKeys() throws -> [HashedClientKey] {
        try self.withConnection { connection in
            var keys: [HashedClientKey] = []
            try connection.statement(
                "SELECT id, name, tenant, methods, created_at, last_used_at, secret_hash FROM client_keys ORDER BY created_at, id"
            ).forEachRow { row in
                let key = ClientKey(
                    id: row.text(0),
                    name: row.optionalText(1),
                    tenant: row.text(2),
                    methods: row.text(3).split(separator: ",").map(String.init),
                    createdAt: row.int64(4),
                    lastUsedAt: row.isNull(5) ? nil : row.int64(5)
                )
                keys.append(HashedClientKey(key: key, secretHash: row.blob(6)))
            }
            return keys
        }
    }

    /// Removes the client key with this id; returns whether there was one.
    public func revokeClientKey(id: String) throws -> Bool {
        try self.withConnection { connection in
            try connection.statement("DELETE FROM client_keys WHERE id = ?").run([.text(id)])
            return connection.changes > 0
        }
    }

    /// Records when keys were last used, in one transaction; a stored time never moves back.
    public func recordClientKeyUses(_ uses: [String: Int64]) throws {
        guard !uses.isEmpty else { return }
        try self.withConnection { connection in
            try connection.transaction {
                let update = try connection.statement("UPDATE client_keys SET last_used_at = max(coalesce(last_used_at, ?2), ?2) WHERE id = ?1")
                for (id, time) in uses { try update.run([.text(id), .integer(time)]) }
            }
        }
    }
}
