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
            AccessRule(subject: .gid(703), tenant: "client-*", methods: ["token.get"]),
            AccessRule(subject: .uid(5004), tenant: "glob*", methods: ["token.get"]),
        ]
        let policy = AccessPolicy(ownerUID: Self.owner, rules: rules)
        let access = AccessControl(policy: policy)
        let callers: [(UInt32, UInt32, [UInt32])] = [
            (5000, 700, []), (5000, 1, []), (5001, 1, []), (5002, 701, []), (5003, 702, []), (Self.owner, 9, []), (0, 0, []), (9999, 9999, []),
            (5005, 5005, [703]), (5006, 5006, [1, 700, 4]), (5004, 1, []), (9998, 9998, [9997]),
        ]
        for (uid, gid, supplementary) in callers {
            let peer = PeerCredentials(pid: 1, uid: uid, gid: gid, supplementaryGroups: supplementary)
            let grants = access.grants(for: peer)
            for tenant in ["acme", "globex", "initech", "other", "*", "client-a", "client-", "clients", "glob"] {
                let expected = policy.allows(uid: uid, groups: peer.groups, method: "token.get", scope: .tenants([tenant]))
                #expect(grants.allowsTokenGet(tenant: tenant) == expected, "uid \(uid) groups \(peer.groups) tenant \(tenant)")
            }
        }
        // Supplementary groups and prefix patterns count, and a prefix is a prefix, nothing looser.
        let member = access.grants(for: PeerCredentials(pid: 1, uid: 5005, gid: 5005, supplementaryGroups: [703]))
        #expect(member.allowsTokenGet(tenant: "client-a") && !member.allowsTokenGet(tenant: "clients") && !member.allowsTokenGet(tenant: "acme"))
        #expect(access.grants(for: PeerCredentials(pid: 1, uid: 5006, gid: 5006, supplementaryGroups: [1, 700, 4])).allowsTokenGet(tenant: "acme"))
        #expect(!access.grants(for: PeerCredentials(pid: 1, uid: 5005, gid: 5005)).allowsTokenGet(tenant: "client-a"))
        #expect(policy.canSee(tenant: "client-x", uid: 5005, groups: [5005, 703]) && !policy.seesEveryTenant(uid: 5005, groups: [5005, 703]))
    }

    @Test func tenantPatternsAreIdsStarOrAPrefixThenStar() {
        for valid in ["acme", "*", "client-*", "a*", "x_y-*"] { #expect(AccessRule.isValidTenantPattern(valid), "\(valid)") }
        for invalid in ["", "**", "client*x", "*client", "Client-*", "a b*", "c?*"] { #expect(!AccessRule.isValidTenantPattern(invalid), "\(invalid)") }
    }
}
