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
    /// Tenants a rule for this uid or primary gid names and whose methods allow `token.get`.
    public let tenants: Set<String>

    /// The grants `policy` gives the caller `uid`/`gid`, stamped with `generation`.
    public init(policy: AccessPolicy, uid: UInt32, gid: UInt32, generation: UInt64) {
        self.generation = generation
        self.isOwner = policy.isOwner(uid: uid)
        var everyTenant = false
        var tenants: Set<String> = []
        if !self.isOwner {
            for rule in policy.rules where rule.applies(uid: uid, gid: gid) && rule.allows(method: Self.method) {
                if rule.tenant == "*" {
                    everyTenant = true
                } else {
                    tenants.insert(rule.tenant)
                }
            }
        }
        self.everyTenant = everyTenant
        self.tenants = everyTenant ? [] : tenants
    }

    /// The method these grants answer for.
    static let method = "token.get"

    /// Whether the caller may have `tenant`'s token: the same answer as
    /// `AccessPolicy.allows(uid:gid:method: "token.get", scope: .tenants([tenant]))`.
    public func allowsTokenGet(tenant: String) -> Bool {
        self.isOwner || self.everyTenant || self.tenants.contains(tenant)
    }
}

extension AccessRule {
    /// Whether the rule is for this uid or primary gid.
    func applies(uid: UInt32, gid: UInt32) -> Bool {
        switch self.subject {
        case .uid(let id): id == uid
        case .gid(let id): id == gid
        }
    }
}
