#if canImport(Glibc)
import Glibc
#endif
import BrokerCore
import NIOPosix
import Synchronization

/// The daemon's current access policy, replaced as a whole on reload and read on every request.
///
/// Every reload bumps `generation`, so a connection can keep its caller's `ConnectionGrants` and
/// recompute them only when the generation it holds is no longer the current one.
public final class AccessControl: Sendable {
    private let policy: Mutex<AccessPolicy>
    /// Bumped while the policy lock is held, right after each replacement: grants read under the
    /// lock always carry the generation of the policy they were computed from.
    private let reloads = Atomic<UInt64>(0)

    public init(policy: AccessPolicy) {
        self.policy = Mutex(policy)
    }

    /// The policy in `store`, owned by this process's uid.
    public static func load(from store: any BrokerStore) async throws -> AccessControl {
        AccessControl(policy: AccessPolicy(ownerUID: getuid(), rules: try await store.accessRules()))
    }

    public func reload(from store: any BrokerStore) async throws {
        self.replace(rules: try await store.accessRules())
    }

    /// Installs `rules` as the policy and starts a new generation.
    public func replace(rules: [AccessRule]) {
        self.policy.withLock { policy in
            policy = AccessPolicy(ownerUID: policy.ownerUID, rules: rules)
            self.reloads.add(1, ordering: .releasing)
        }
    }

    /// The generation of the current policy: changes on every reload. One atomic load, no lock.
    public var generation: UInt64 { self.reloads.load(ordering: .acquiring) }

    /// The caller's `token.get` grants under the current policy, stamped with its generation.
    public func grants(for peer: PeerCredentials) -> ConnectionGrants {
        self.policy.withLock { policy in
            ConnectionGrants(policy: policy, uid: peer.uid, groups: peer.groups, generation: self.reloads.load(ordering: .relaxed))
        }
    }

    /// `grants` if they are still current, else freshly computed ones: the per-request step of a
    /// connection that caches its grants (a load and a compare while the policy is unchanged).
    public func refreshed(_ grants: ConnectionGrants, for peer: PeerCredentials) -> ConnectionGrants {
        grants.generation == self.generation ? grants : self.grants(for: peer)
    }

    public var current: AccessPolicy { self.policy.withLock { $0 } }

    public func allows(_ peer: PeerCredentials, method: String, scope: AccessPolicy.Scope) -> Bool {
        self.policy.withLock { $0.allows(uid: peer.uid, groups: peer.groups, method: method, scope: scope) }
    }
}
