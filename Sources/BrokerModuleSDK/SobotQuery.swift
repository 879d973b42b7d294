/// A query string the broker may append to a forwarded path: already percent-encoded, without the
/// `?`. Query values may hold personal data, so they are forwarded and never logged.
public struct SobotQuery: Sendable, Hashable {
    public static let maximumLength = 8192

    /// The encoded query; empty for none.
    public let encoded: String

    public static let none = SobotQuery(trusted: "")

    private init(trusted encoded: String) {
        self.encoded = encoded
    }

    /// Takes a query as a client sent it, after checking that it holds only what RFC 3986 allows in a
    /// query (unreserved and sub-delimiter characters, `:` `@` `/` `?`, and well-formed
    /// percent-encodings), so it cannot break out of the URL it is appended to.
    public init(validatingEncoded raw: some StringProtocol) throws(ModuleError) {
        let bytes = Array(raw.utf8)
        guard bytes.count <= Self.maximumLength else { throw .invalidParams("query is longer than \(Self.maximumLength) bytes") }
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%") {
                guard index + 2 < bytes.count, SobotPath.hexValue(bytes[index + 1]) != nil, SobotPath.hexValue(bytes[index + 2]) != nil else {
                    throw .invalidParams("query holds a malformed percent-encoding")
                }
                index += 3
                continue
            }
            guard Self.isQueryByte(byte) else { throw .invalidParams("query holds a character a URL query may not") }
            index += 1
        }
        self.encoded = String(decoding: bytes, as: UTF8.self)
    }

    /// Encodes `sobot.request`'s `query` object: names sorted, each value a string or a number.
    public init(parameters: [String: JSONValue]) throws(ModuleError) {
        var parts: [String] = []
        for name in parameters.keys.sorted() {
            guard !name.isEmpty, name.utf8.count <= 256 else { throw .invalidParams("query: a name must be 1-256 bytes") }
            let value: String
            switch parameters[name]! {
            case .string(let text): value = text
            case .integer(let number): value = String(number)
            case .bigInteger(let digits): value = digits
            case .double(let number) where number.isFinite: value = String(number)
            default: throw .invalidParams("query: each value must be a string or a number")
            }
            parts.append(Self.escape(name) + "=" + Self.escape(value))
        }
        let encoded = parts.joined(separator: "&")
        guard encoded.utf8.count <= Self.maximumLength else { throw .invalidParams("query is longer than \(Self.maximumLength) bytes encoded") }
        self.init(trusted: encoded)
    }

    /// Percent-encodes everything but RFC 3986's unreserved characters.
    public static func escape(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.append(byte)
            default:
                out.append(contentsOf: [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0xf)]])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func isQueryByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"),
            UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"),
            UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: ";"), UInt8(ascii: "="),
            UInt8(ascii: ":"), UInt8(ascii: "@"), UInt8(ascii: "/"), UInt8(ascii: "?"):
            true
        default: false
        }
    }
}
