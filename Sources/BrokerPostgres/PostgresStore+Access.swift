import BrokerCore
import PostgresNIO

/// Access rules, as in SQLite; every change bumps the configuration version so every broker reloads them.
extension PostgresStore {
    /// Adds or replaces the rule for (subject, tenant).
    public func grant(_ rule: AccessRule, now: Int64) async throws {
        let (kind, id) = rule.subject.columns
        let methods = rule.methods.joined(separator: ",")
        try await self.pool.withTransaction("grant access") { session in
            try await session.execute(
                """
                INSERT INTO access_rules (subject_kind, subject_id, tenant, methods, created_at) VALUES (\(kind), \(id), \(rule.tenant), \(methods), \(now))
                ON CONFLICT (subject_kind, subject_id, tenant) DO UPDATE SET methods = excluded.methods
                """
            )
            try await Self.bumpConfiguration(session: session)
        }
    }

    /// Removes the subject's rules (for one tenant, or all); returns how many were removed.
    public func revoke(_ subject: AccessRule.Subject, tenant: String?) async throws -> Int {
        let (kind, id) = subject.columns
        return try await self.pool.withTransaction("revoke access") { session in
            let removed = try await session.query(
                """
                WITH gone AS (
                    DELETE FROM access_rules WHERE subject_kind = \(kind) AND subject_id = \(id) AND (\(tenant)::text IS NULL OR tenant = \(tenant))
                    RETURNING 1
                )
                SELECT count(*) FROM gone
                """
            )[0].decode(Int.self)
            if removed > 0 { try await Self.bumpConfiguration(session: session) }
            return removed
        }
    }

    /// Every rule, ordered by subject then tenant (byte order, as in SQLite).
    public func accessRules() async throws -> [AccessRule] {
        let rows = try await self.pool.withSession("read the access rules") { session in
            try await session.query(
                "SELECT id, subject_kind, subject_id, tenant, methods FROM access_rules ORDER BY subject_kind COLLATE \"C\", subject_id, tenant COLLATE \"C\""
            )
        }
        return try rows.compactMap { row in
            let (ruleID, kind, subjectID, tenant, methods) = try row.decode((Int64, String, Int64, String, String).self)
            // A stored id no uid_t holds names nobody; truncated, 2^32 would have named root.
            guard let subjectID = UInt32(exactly: subjectID) else { return nil }
            return AccessRule(
                id: ruleID,
                subject: kind == "uid" ? .uid(subjectID) : .gid(subjectID),
                tenant: tenant,
                methods: methods.split(separator: ",").map(String.init)
            )
        }
    }
}

extension AccessRule.Subject {
    fileprivate var columns: (String, Int64) {
        switch self {
        case .uid(let id): ("uid", Int64(id))
        case .gid(let id): ("gid", Int64(id))
        }
    }
}
