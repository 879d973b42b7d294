import BrokerCore
import Testing

@testable import BrokerServer

/// The per-connection `token.get` grants the fast path caches, keyed by the policy generation.
@Suite struct ConnectionGrantsTests {
    static let owner: UInt32 = 4000
    static let member = PeerCredentials(pid: 10, uid: 5000, gid: 700)
    static let stranger = PeerCredentials(pid: 11, uid: 6000, gid: 6000)

    static func control(_ rules: [AccessRule]) -> AccessControl {
        AccessControl(policy: AccessPolicy(ownerUID: Self.owner, rules: rules))
    }

    @Test func theOwnerAndRootMayHaveEveryTenant() {
        let access = Self.control([])
        for uid in [Self.owner, 0] {
            let grants = access.grants(for: PeerCredentials(pid: 1, uid: uid, gid: 1))
            #expect(grants.isOwner && grants.allowsTokenGet(tenant: "anything"))
        }
        #expect(!access.grants(for: Self.stranger).allowsTokenGet(tenant: "anything"))
    }

    @Test func aGroupRuleGrantsItsTenantsAndNoOther() {
        let access = Self.control([
            AccessRule(subject: .gid(700), tenant: "acme", methods: ["token.get"]),
            AccessRule(subject: .uid(5000), tenant: "globex", methods: ["token.*"]),
            AccessRule(subject: .gid(700), tenant: "initech", methods: ["marketing.*"]),
            AccessRule(subject: .uid(6000), tenant: "umbrella", methods: ["*"]),
        ])
        let grants = access.grants(for: Self.member)
        #expect(!grants.isOwner && !grants.everyTenant)
        #expect(grants.tenants == ["acme", "globex"])
        #expect(grants.allowsTokenGet(tenant: "acme") && grants.allowsTokenGet(tenant: "globex"))
        #expect(!grants.allowsTokenGet(tenant: "initech"), "a rule without token.get grants no token")
        #expect(!grants.allowsTokenGet(tenant: "umbrella"), "another uid's rule")
        #expect(!grants.allowsTokenGet(tenant: "ACME") && !grants.allowsTokenGet(tenant: ""))
    }

    @Test func aWildcardRuleGrantsEveryTenant() {
        let access = Self.control([AccessRule(subject: .gid(700), tenant: "*", methods: ["token.get"])])
        let grants = access.grants(for: Self.member)
        #expect(grants.everyTenant && grants.tenants.isEmpty)
        #expect(grants.allowsTokenGet(tenant: "acme") && grants.allowsTokenGet(tenant: "never-added"))
        #expect(!access.grants(for: Self.stranger).allowsTokenGet(tenant: "acme"))
    }

    /// A reload starts a new generation; cached grants are kept while it is unchanged and replaced
    /// by ones computed from the new rules once it moves.
    @Test func grantsAreRecomputedAfterAReload() {
        let access = Self.control([AccessRule(subject: .gid(700), tenant: "acme", methods: ["token.get"])])
        let first = access.grants(for: Self.member)
        #expect(first.generation == access.generation)
        #expect(access.refreshed(first, for: Self.member) == first)

        access.replace(rules: [AccessRule(subject: .gid(700), tenant: "globex", methods: ["token.get"])])
        #expect(access.generation != first.generation)
        let second = access.refreshed(first, for: Self.member)
        #expect(second.generation == access.generation)
        #expect(!second.allowsTokenGet(tenant: "acme"), "a revoked tenant is denied after the reload")
        #expect(second.allowsTokenGet(tenant: "globex"))

        access.replace(rules: [])
        #expect(!access.refreshed(second, for: Self.member).allowsTokenGet(tenant: "globex"))
    }

    /// The grants answer exactly as the policy does, for every caller, tenant and rule shape.
    @Test func grantsAgreeWithThePolicy() {
        let rules = [
            AccessRule(subject: .gid(700), tenant: "acme", methods: ["token.get", "tenant.list"]),
            AccessRule(subject: .uid(5000), tenant: "globex", methods: ["token.*"]),
            AccessRule(subject: .uid(5001), tenant: "*", methods: ["*"]),
            AccessRule(subject: .gid(701), tenant: "*", methods: ["marketing.*"]),
            AccessRule(subject: .gid(702), tenant: "initech", methods: ["token.getter"]),
        ]
        let policy = AccessPolicy(ownerUID: Self.owner, rules: rules)
        let access = AccessControl(policy: policy)
        let callers: [(UInt32, UInt32)] = [(5000, 700), (5000, 1), (5001, 1), (5002, 701), (5003, 702), (Self.owner, 9), (0, 0), (9999, 9999)]
        for (uid, gid) in callers {
            let grants = access.grants(for: PeerCredentials(pid: 1, uid: uid, gid: gid))
            for tenant in ["acme", "globex", "initech", "other", "*"] {
                let expected = policy.allows(uid: uid, gid: gid, method: "token.get", scope: .tenants([tenant]))
                #expect(grants.allowsTokenGet(tenant: tenant) == expected, "uid \(uid) gid \(gid) tenant \(tenant)")
            }
        }
    }
}
