/// A client key as stored and listed: it lets a caller of the HTTP proxy over TCP call `methods` for
/// `tenant` (`*`: every tenant). It holds no secret: the secret's hash travels only in
/// `HashedClientKey`, which nothing that lists keys reads.
public struct ClientKey: Sendable, Equatable {
    /// The public id (see `ClientKeyText`): what `access key list` shows and `revoke` takes.
    public var id: String
    public var name: String?
    /// A tenant id, or `*`.
    public var tenant: String
    /// Method patterns (see `MethodPattern`).
    public var methods: [String]
    /// Unix seconds.
    public var createdAt: Int64
    /// Unix seconds, recorded coarsely (see `ClientKeyVerifier`); nil when never used.
    public var lastUsedAt: Int64?

    public init(id: String, name: String?, tenant: String, methods: [String], createdAt: Int64, lastUsedAt: Int64? = nil) {
        self.id = id
        self.name = name
        self.tenant = tenant
        self.methods = methods
        self.createdAt = createdAt
        self.lastUsedAt = lastUsedAt
    }
}

/// A client key with the SHA-256 of its secret: what a daemon verifies presented keys against.
public struct HashedClientKey: Sendable, Equatable {
    public var key: ClientKey
    /// `SHA256.byteCount` bytes.
    public var secretHash: [UInt8]

    public init(key: ClientKey, secretHash: [UInt8]) {
        self.key = key
        self.secretHash = secretHash
    }
}
