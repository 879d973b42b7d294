import Synchronization

/// The lock-protected read side of the token engine: what `token.get` consults on its hot path
/// without an actor hop, SQLite or the network.
///
/// Only the token manager writes it; readers get a token only while it is fresh.
public final class TokenCache: Sendable {
    private struct Contents {
        var tokens: [TokenKey: LiveToken] = [:]
        var regionsByTenant: [String: [String]] = [:]
    }

    private let contents = Mutex(Contents())

    public init() {}

    /// The cached token for `key` if it still has at least its serving margin left at `now`.
    public func freshToken(for key: TokenKey, now: Double) -> LiveToken? {
        self.contents.withLock { contents in
            guard let token = contents.tokens[key], token.isFresh(at: now) else { return nil }
            return token
        }
    }

    /// The regions a tenant has credentials in, sorted; empty for an unknown tenant.
    public func regions(of tenant: String) -> [String] {
        self.contents.withLock { $0.regionsByTenant[tenant] ?? [] }
    }

    public var tenantCount: Int { self.contents.withLock { $0.regionsByTenant.count } }

    func store(_ token: LiveToken, for key: TokenKey) {
        self.contents.withLock { $0.tokens[key] = token }
    }

    func track(_ key: TokenKey) {
        self.contents.withLock { contents in
            var regions = contents.regionsByTenant[key.tenant] ?? []
            guard !regions.contains(key.region) else { return }
            regions.append(key.region)
            regions.sort()
            contents.regionsByTenant[key.tenant] = regions
        }
    }

    func forget(_ key: TokenKey) {
        self.contents.withLock { contents in
            contents.tokens[key] = nil
            let remaining = (contents.regionsByTenant[key.tenant] ?? []).filter { $0 != key.region }
            contents.regionsByTenant[key.tenant] = remaining.isEmpty ? nil : remaining
        }
    }
}
