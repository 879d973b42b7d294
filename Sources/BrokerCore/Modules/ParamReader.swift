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
