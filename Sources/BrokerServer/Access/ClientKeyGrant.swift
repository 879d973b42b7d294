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

extension ClientKeyGrant: RemoteCallerGrant {
    public var id: String { self.keyID }

    /// As access rules decide for a local caller: a call naming tenants needs the key to cover each;
    /// one naming none (the broker's own methods) or every tenant needs a `*` key.
    public func allows(method: String, scope: AccessPolicy.Scope) -> Bool {
        switch scope {
        case .broker, .everyTenant: self.allows(method: method, tenant: "*")
        case .tenants(let tenants): !tenants.isEmpty && tenants.allSatisfy { self.allows(method: method, tenant: $0) }
        }
    }
}
