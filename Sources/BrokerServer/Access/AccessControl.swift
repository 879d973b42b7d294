#if canImport(Glibc)
import Glibc
#endif
import BrokerCore
import NIOPosix
import Synchronization

/// The daemon's current access policy, replaced as a whole on reload and read on every request.
public final class AccessControl: Sendable {
    private let policy: Mutex<AccessPolicy>

    public init(policy: AccessPolicy) {
        self.policy = Mutex(policy)
    }

    /// The policy in `store`, owned by this process's uid.
    public static func load(from store: TenantStore) throws -> AccessControl {
        AccessControl(policy: AccessPolicy(ownerUID: getuid(), rules: try store.accessRules()))
    }

    public func reload(from store: TenantStore) async throws {
        let rules = try await NIOThreadPool.singleton.runIfActive { try store.accessRules() }
        self.policy.withLock { $0 = AccessPolicy(ownerUID: $0.ownerUID, rules: rules) }
    }

    public var current: AccessPolicy { self.policy.withLock { $0 } }

    public func allows(_ peer: PeerCredentials, method: String, scope: AccessPolicy.Scope) -> Bool {
        self.policy.withLock { $0.allows(uid: peer.uid, gid: peer.gid, method: method, scope: scope) }
    }

    /// The hot path's question, answered without a lock for the common case of the owner.
    func allowsTokenGet(_ peer: PeerCredentials, tenant: String, isOwner: Bool) -> Bool {
        isOwner || self.allows(peer, method: "token.get", scope: .tenants([tenant]))
    }
}
