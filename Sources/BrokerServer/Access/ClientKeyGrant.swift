import BrokerCore

/// What a verified client key lets its caller do: call `methods` for `tenant` (`*`: every tenant).
public struct ClientKeyGrant: Sendable, Equatable {
    /// The key's public id, for audit lines (never the key).
    public let keyID: String
    /// A tenant id, or `*`.
    public let tenant: String
    /// Method patterns (see `MethodPattern`), as access rules hold them.
    public let methods: [String]

    public init(keyID: String, tenant: String, methods: [String]) {
        self.keyID = keyID
        self.tenant = tenant
        self.methods = methods
    }

    /// Whether the key may call `method` for `tenant`.
    public func allows(method: String, tenant: String) -> Bool {
        (self.tenant == "*" || self.tenant == tenant) && MethodPattern.allows(self.methods, method: method)
    }
}
