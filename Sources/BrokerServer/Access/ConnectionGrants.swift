import BrokerCore

/// What one caller may fetch with `token.get`, worked out once from a policy so the socket loops'
/// fast path answers "may this caller have this tenant's token?" with a generation compare and a
/// set lookup: no lock, no allocation, no scan of the rules.
///
/// A connection keeps the value it got from `AccessControl.grants(for:)` and asks for a new one only
/// when `AccessControl.generation` differs from `generation` (the policy was reloaded since).
public struct ConnectionGrants: Sendable, Equatable {
    /// The policy generation these grants were computed from.
    public let generation: UInt64
    /// The broker's own uid or root: everything is allowed.
    public let isOwner: Bool
    /// A rule for tenant `*` allows `token.get`.
    public let everyTenant: Bool
    /// Tenants a rule for this uid or one of its groups names and whose methods allow `token.get`.
    public let tenants: Set<String>
    /// The prefixes of such rules' `prefix*` patterns (usually none).
    public let tenantPrefixes: [String]

    /// The grants `policy` gives the caller `uid` in `groups`, stamped with `generation`.
    public init(policy: AccessPolicy, uid: UInt32, groups: [UInt32], generation: UInt64) {
        self.generation = generation
        self.isOwner = policy.isOwner(uid: uid)
        var everyTenant = false
        var tenants: Set<String> = []
        var prefixes: [String] = []
        if !self.isOwner {
            for rule in policy.rules where rule.applies(uid: uid, groups: groups) && rule.allows(method: Self.method) {
                switch rule.tenantPrefix {
                case ""?: everyTenant = true
                case let prefix?: prefixes.append(prefix)
                case nil: tenants.insert(rule.tenant)
                }
            }
        }
        self.everyTenant = everyTenant
        self.tenants = everyTenant ? [] : tenants
        self.tenantPrefixes = everyTenant ? [] : prefixes
    }

    /// The method these grants answer for.
    static let method = "token.get"

    /// Whether the caller may have `tenant`'s token: the same answer as
    /// `AccessPolicy.allows(uid:groups:method: "token.get", scope: .tenants([tenant]))`.
    public func allowsTokenGet(tenant: String) -> Bool {
        self.isOwner || self.everyTenant || self.tenants.contains(tenant) || self.tenantPrefixes.contains { tenant.hasPrefix($0) }
    }
}
