/// Who may call what. The broker's own uid and root may call everything; anyone else only what a
/// rule grants to their uid or to one of their groups, primary or supplementary (as the kernel
/// reports them for the connection: `SO_PEERCRED`, `SO_PEERGROUPS`).
public struct AccessPolicy: Sendable {
    /// What a request touches, read from its params.
    public enum Scope: Sendable, Equatable {
        /// No tenant named: the broker as a whole.
        case broker
        case tenants([String])
        /// `tenants: "*"`.
        case everyTenant

        public init(params: JSONValue?) {
            switch (params?["tenant"], params?["tenants"]) {
            case (.string(let tenant)?, _): self = .tenants([tenant])
            case (_, .string("*")?): self = .everyTenant
            case (_, .array(let list)?): self = .tenants(list.compactMap(\.stringValue))
            default: self = .broker
            }
        }
    }

    /// Methods any caller holding at least one grant may use (`tenant.list` shows only its tenants).
    public static let basicMethods: Set<String> = ["broker.health", "module.list", "tenant.list"]

    public let ownerUID: UInt32
    public let rules: [AccessRule]

    public init(ownerUID: UInt32, rules: [AccessRule]) {
        self.ownerUID = ownerUID
        self.rules = rules
    }

    public func isOwner(uid: UInt32) -> Bool {
        uid == 0 || uid == self.ownerUID
    }

    public func allows(uid: UInt32, groups: [UInt32], method: String, scope: Scope) -> Bool {
        if self.isOwner(uid: uid) { return true }
        let granted = self.rules(uid: uid, groups: groups)
        guard !granted.isEmpty else { return false }
        if Self.basicMethods.contains(method) { return true }
        switch scope {
        case .broker, .everyTenant:
            return granted.contains { $0.tenant == "*" && $0.allows(method: method) }
        case .tenants(let tenants):
            return !tenants.isEmpty
                && tenants.allSatisfy { tenant in granted.contains { $0.covers(tenant: tenant) && $0.allows(method: method) } }
        }
    }

    /// Whether `tenant` shows up in this caller's `tenant.list`.
    public func canSee(tenant: String, uid: UInt32, groups: [UInt32]) -> Bool {
        self.isOwner(uid: uid) || self.rules(uid: uid, groups: groups).contains { $0.covers(tenant: tenant) }
    }

    /// Whether the caller sees every tenant (the owner, or a `*` rule); else `canSee` decides per
    /// tenant: what `broker.health` counts for them.
    public func seesEveryTenant(uid: UInt32, groups: [UInt32]) -> Bool {
        self.isOwner(uid: uid) || self.rules(uid: uid, groups: groups).contains { $0.tenant == "*" }
    }

    private func rules(uid: UInt32, groups: [UInt32]) -> [AccessRule] {
        self.rules.filter { $0.applies(uid: uid, groups: groups) }
    }
}
