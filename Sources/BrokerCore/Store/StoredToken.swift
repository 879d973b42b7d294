/// A token as persisted: the opened value plus its issue and expiry times (Unix seconds on the
/// reader's wall clock: a store whose database keeps its own clock rebases them when it reads).
///
/// `revision` is the credential's revision the token was fetched under and `generation` counts the
/// tokens stored for the key: a reader holding a newer generation knows a read is out of date.
public struct StoredToken: Sendable, Equatable {
    public var key: TokenKey
    public var value: String
    public var issuedAt: Double
    public var expiresAt: Double
    public var revision: Int64
    public var generation: Int64

    public init(key: TokenKey, value: String, issuedAt: Double, expiresAt: Double, revision: Int64 = 0, generation: Int64 = 0) {
        self.key = key
        self.value = value
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.revision = revision
        self.generation = generation
    }
}

/// Identifies one live token: a tenant's credential in one region.
public struct TokenKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var tenant: String
    public var region: String

    public init(tenant: String, region: String) {
        self.tenant = tenant
        self.region = region
    }

    public var description: String { "\(self.tenant)/\(self.region)" }

    /// The key a request for (tenant, region?) means, if `regions` (the tenant's) settles it:
    /// the named region, or the only one when none is named.
    public static func pick(tenant: String, region: String?, from regions: [String]) -> TokenKey? {
        if let region {
            return regions.contains(region) ? TokenKey(tenant: tenant, region: region) : nil
        }
        return regions.count == 1 ? TokenKey(tenant: tenant, region: regions[0]) : nil
    }

    public static func < (lhs: TokenKey, rhs: TokenKey) -> Bool {
        (lhs.tenant, lhs.region) < (rhs.tenant, rhs.region)
    }
}

/// A credential opened for one upstream call. Short-lived by design: fetch it, sign, drop it.
public struct Credential: Sendable {
    public var key: TokenKey
    public var appid: String
    public var appKey: String
    /// The credential's revision when it was read: a token fetched with it is stored only while
    /// the credential still has this revision.
    public var revision: Int64

    public init(key: TokenKey, appid: String, appKey: String, revision: Int64) {
        self.key = key
        self.appid = appid
        self.appKey = appKey
        self.revision = revision
    }
}
