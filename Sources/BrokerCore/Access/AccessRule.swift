/// A grant: a uid or gid may call `methods` for `tenant`: one tenant id, `*` for every tenant, or a
/// prefix pattern such as `client-*` (every tenant whose id starts with `client-`). Tenant ids never
/// hold `*`, so a pattern cannot be mistaken for an id.
public struct AccessRule: Sendable, Equatable {
    public enum Subject: Sendable, Hashable, CustomStringConvertible {
        case uid(UInt32)
        case gid(UInt32)

        public var description: String {
            switch self {
            case .uid(let id): "uid \(id)"
            case .gid(let id): "gid \(id)"
            }
        }
    }

    public var id: Int64
    public var subject: Subject
    /// A tenant id, `*`, or `prefix*`.
    public var tenant: String
    /// Method patterns (see `MethodPattern`).
    public var methods: [String]

    public init(id: Int64 = 0, subject: Subject, tenant: String, methods: [String]) {
        self.id = id
        self.subject = subject
        self.tenant = tenant
        self.methods = methods
    }

    public func allows(method: String) -> Bool {
        MethodPattern.allows(self.methods, method: method)
    }

    public func covers(tenant: String) -> Bool {
        if let prefix = self.tenantPrefix { return tenant.hasPrefix(prefix) }
        return self.tenant == tenant
    }

    /// What a `*` or `prefix*` rule requires a tenant id to start with; nil for a single tenant.
    public var tenantPrefix: String? {
        self.tenant.hasSuffix("*") ? String(self.tenant.dropLast()) : nil
    }

    /// Whether `text` is what a rule's tenant may be: a tenant id, `*`, or a tenant-id prefix then `*`.
    public static func isValidTenantPattern(_ text: String) -> Bool {
        guard text.hasSuffix("*") else { return Identifier.isValidTenantID(text) }
        let prefix = text.dropLast()
        return prefix.isEmpty || Identifier.isValidTenantID(String(prefix))
    }

    /// Whether the rule is for this uid, or for one of these groups (the caller's primary and
    /// supplementary groups, as the kernel reports them for the connection).
    public func applies(uid: UInt32, groups: [UInt32]) -> Bool {
        switch self.subject {
        case .uid(let id): id == uid
        case .gid(let id): groups.contains(id)
        }
    }
}

extension SQLiteStore {
    /// Adds or replaces the rule for (subject, tenant).
    public func grant(_ rule: AccessRule, now: Int64) throws {
        let (kind, id) = rule.subject.columns
        try self.withConnection { connection in
            try connection.statement(
                """
                INSERT INTO access_rules (subject_kind, subject_id, tenant, methods, created_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (subject_kind, subject_id, tenant) DO UPDATE SET methods = excluded.methods
                """
            ).run([.text(kind), .integer(id), .text(rule.tenant), .text(rule.methods.joined(separator: ",")), .integer(now)])
        }
    }

    /// Removes the subject's rules (for one tenant, or all); returns how many were removed.
    public func revoke(_ subject: AccessRule.Subject, tenant: String?) throws -> Int {
        let (kind, id) = subject.columns
        return try self.withConnection { connection in
            try connection.statement("DELETE FROM access_rules WHERE subject_kind = ? AND subject_id = ? AND (?3 IS NULL OR tenant = ?3)")
                .run([.text(kind), .integer(id), tenant.sqliteValue])
            return connection.changes
        }
    }

    public func accessRules() throws -> [AccessRule] {
        try self.withConnection { connection in
            var rules: [AccessRule] = []
            try connection.statement("SELECT id, subject_kind, subject_id, tenant, methods FROM access_rules ORDER BY subject_kind, subject_id, tenant")
                .forEachRow { row in
                    // A stored id no uid_t holds names nobody; truncated, 2^32 would have named root.
                    guard let id = UInt32(exactly: row.int64(2)) else { return }
                    rules.append(
                        AccessRule(
                            id: row.int64(0),
                            subject: row.text(1) == "uid" ? .uid(id) : .gid(id),
                            tenant: row.text(3),
                            methods: row.text(4).split(separator: ",").map(String.init)
                        )
                    )
                }
            return rules
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
