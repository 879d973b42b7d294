/// Reads a JSON-RPC method's named params with precise, secret-free errors.
public struct ParamReader: Sendable {
    public let members: [String: JSONValue]

    /// Accepts an object or no params; unknown names are rejected so typos do not pass silently.
    public init(_ params: JSONValue?, allowed: Set<String>) throws(ModuleError) {
        switch params {
        case .none, .some(.null): self.members = [:]
        case .some(.object(let members)): self.members = members
        case .some(let other): throw .invalidParams("params must be an object, not \(other.typeName)")
        }
        if let unknown = self.members.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw .invalidParams("unknown param \"\(unknown)\" (allowed: \(allowed.sorted().joined(separator: ", ")))")
        }
    }

    public func string(_ name: String) throws(ModuleError) -> String {
        guard let value = try self.optionalString(name) else { throw .invalidParams("\(name) is required") }
        return value
    }

    public func optionalString(_ name: String) throws(ModuleError) -> String? {
        switch self.members[name] {
        case .none, .some(.null): return nil
        case .some(.string(let text)) where !text.isEmpty: return text
        case .some(.string): throw .invalidParams("\(name) must not be empty")
        case .some(let other): throw .invalidParams("\(name) must be a string, not \(other.typeName)")
        }
    }

    /// A tenant id (see `Identifier.isValidTenantID`). Anything else is refused before any lookup,
    /// and is not echoed: a caller's string may be huge or hold control characters.
    public func tenantID(_ name: String) throws(ModuleError) -> String {
        let text = try self.string(name)
        try Self.checkTenantID(text, name: name)
        return text
    }

    public func optionalTenantID(_ name: String) throws(ModuleError) -> String? {
        guard let text = try self.optionalString(name) else { return nil }
        try Self.checkTenantID(text, name: name)
        return text
    }

    /// A region name (see `Identifier.isValidRegion`), refused like a bad tenant id.
    public func optionalRegion(_ name: String) throws(ModuleError) -> String? {
        guard let text = try self.optionalString(name) else { return nil }
        try Self.checkRegion(text, name: name)
        return text
    }

    /// Checks the names every method shares, `tenant`, `tenants` (an array or `"*"`) and `region`,
    /// wherever they are strings, so that no lookup, access check or log line ever sees one that is
    /// not a tenant id or region name. Other types are left to the method's own reader.
    public static func checkScope(_ params: JSONValue?) throws(ModuleError) {
        if case .string(let tenant) = params?["tenant"] { try Self.checkTenantID(tenant, name: "tenant") }
        if case .array(let tenants) = params?["tenants"] {
            for case .string(let tenant) in tenants { try Self.checkTenantID(tenant, name: "tenants") }
        }
        if case .string(let region) = params?["region"] { try Self.checkRegion(region, name: "region") }
    }

    static func checkTenantID(_ text: String, name: String) throws(ModuleError) {
        guard Identifier.isValidTenantID(text) else { throw .invalidParams("\(name): not a tenant id (1-64 of [a-z0-9_-])") }
    }

    static func checkRegion(_ text: String, name: String) throws(ModuleError) {
        guard Identifier.isValidRegion(text) else { throw .invalidParams("\(name): not a region name (1-32 of [a-z0-9-])") }
    }

    /// An id Sobot may send as a number: a string, or an integer given as a JSON number.
    public func optionalID(_ name: String) throws(ModuleError) -> String? {
        switch self.members[name] {
        case .none, .some(.null): return nil
        case .some(.string(let text)) where !text.isEmpty: return text
        case .some(.integer(let number)): return String(number)
        case .some(.bigInteger(let digits)): return digits
        case .some(let other): throw .invalidParams("\(name) must be a string id, not \(other.typeName)")
        }
    }

    /// An integer, accepted as a JSON number or a string of digits, within `range`.
    public func optionalInteger(_ name: String, in range: ClosedRange<Int64>) throws(ModuleError) -> Int64? {
        guard let value = self.members[name], value != .null else { return nil }
        guard let number = value.integerValue else { throw .invalidParams("\(name) must be an integer") }
        guard range.contains(number) else {
            throw .invalidParams("\(name) must be between \(range.lowerBound) and \(range.upperBound)")
        }
        return number
    }

    public func optionalBool(_ name: String) throws(ModuleError) -> Bool? {
        switch self.members[name] {
        case .none, .some(.null): return nil
        case .some(.bool(let flag)): return flag
        case .some(let other): throw .invalidParams("\(name) must be a boolean, not \(other.typeName)")
        }
    }
}
