/// A tenant as an operator defines it: what `tenant add` and `tenant import` write.
public struct TenantDefinition: Sendable {
    public var id: String
    /// nil keeps the stored name of an existing tenant.
    public var name: String?
    public var credentials: [CredentialDefinition]

    public init(id: String, name: String?, credentials: [CredentialDefinition]) {
        self.id = id
        self.name = name
        self.credentials = credentials
    }
}

/// One region's credential. `appKey` is the plaintext secret: it is sealed before it reaches the database.
public struct CredentialDefinition: Sendable {
    public var region: String
    public var appid: String
    public var appKey: String

    public init(region: String, appid: String, appKey: String) {
        self.region = region
        self.appid = appid
        self.appKey = appKey
    }
}

/// What `tenant list` and `tenant.list` show: never a key or a token.
public struct TenantSummary: Sendable, Equatable {
    public var id: String
    public var name: String?
    public var regions: [RegionSummary]

    public init(id: String, name: String?, regions: [RegionSummary]) {
        self.id = id
        self.name = name
        self.regions = regions
    }

    public struct RegionSummary: Sendable, Equatable {
        public var region: String
        public var appid: String
        /// Expiry of the stored token, if one is stored.
        public var tokenExpiresAt: Int64?

        public init(region: String, appid: String, tokenExpiresAt: Int64?) {
            self.region = region
            self.appid = appid
            self.tokenExpiresAt = tokenExpiresAt
        }
    }
}
