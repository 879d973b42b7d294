/// A JSON document. Integers stay integers (ids, counts, Unix times) so they round-trip exactly.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case integer(Int64)
    case double(Double)
    /// An integer too large for Int64, kept as its exact decimal digits (Sobot's ids can be 25 digits).
    case bigInteger(String)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { return members[key] }
        return nil
    }

    public var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    public var objectValue: [String: JSONValue]? {
        if case .object(let members) = self { return members }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// An integer from a JSON number, or from a string of digits (Sobot sends either).
    public var integerValue: Int64? {
        switch self {
        case .integer(let number): return number
        case .double(let number) where number.rounded() == number && abs(number) < 9e15: return Int64(number)
        case .string(let text): return Int64(text.trimmingSpaces)
        default: return nil
        }
    }

    /// A number from a JSON number, or from a numeric string.
    public var doubleValue: Double? {
        switch self {
        case .integer(let number): return Double(number)
        case .double(let number): return number
        case .bigInteger(let digits): return Double(digits)
        case .string(let text): return Double(text.trimmingSpaces)
        default: return nil
        }
    }

    /// The JSON type's name, for error messages.
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .integer, .double, .bigInteger: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

extension String {
    var trimmingSpaces: Substring {
        let leading = self.drop { $0 == " " }
        var end = leading.endIndex
        while end > leading.startIndex, leading[leading.index(before: end)] == " " {
            end = leading.index(before: end)
        }
        return leading[..<end]
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
    public init(nilLiteral: ()) { self = .null }
}
