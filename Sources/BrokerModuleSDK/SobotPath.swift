/// A path the broker may forward to a region's base URL: checked before any network call, so that
/// no caller can reach another host, climb out of the API, or ask for a token.
///
/// The raw path is percent-decoded once and the decoded form is both checked and sent, so what was
/// checked is what the upstream receives. Rules: it starts with `/`; every decoded byte is one of
/// `A-Z a-z 0-9 - . _ ~ /` (so no scheme, host, `\`, `?`, `#`, `@`, space, control or non-ASCII byte);
/// no empty segment (`//host`), no `.` or `..` segment; at most `maximumLength` bytes; and never
/// `/api/get_token`, in any letter case or encoding. Errors never echo the path.
public struct SobotPath: Sendable, Hashable, CustomStringConvertible {
    public static let maximumLength = 1024

    /// The decoded path, as sent upstream.
    public let value: String

    public init(validating raw: some StringProtocol) throws(ModuleError) {
        let bytes = Array(raw.utf8)
        guard !bytes.isEmpty else { throw .invalidParams("path is empty") }
        guard bytes.count <= Self.maximumLength else { throw .invalidParams("path is longer than \(Self.maximumLength) bytes") }
        guard bytes[0] == UInt8(ascii: "/") else { throw .invalidParams("path must start with /") }
        let decoded = try Self.percentDecoded(bytes)
        guard decoded.allSatisfy(Self.isPathByte) else {
            throw .invalidParams("path may hold only A-Z a-z 0-9 - . _ ~ / (a scheme, host, query or other character is refused)")
        }
        let path = String(decoding: decoded, as: UTF8.self)
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        guard !segments.dropLast().contains(where: \.isEmpty) else { throw .invalidParams("path must not hold an empty segment (//)") }
        guard !segments.contains(where: { $0 == "." || $0 == ".." }) else { throw .invalidParams("path must not hold a . or .. segment") }
        var normalized = path.lowercased()
        while normalized.count > 1, normalized.hasSuffix("/") { normalized.removeLast() }
        guard normalized != "/api/get_token" else { throw .invalidParams("the broker never forwards /api/get_token: use token.get") }
        self.value = path
    }

    public var description: String { self.value }

    private static func percentDecoded(_ bytes: [UInt8]) throws(ModuleError) -> [UInt8] {
        var decoded: [UInt8] = []
        decoded.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "%") {
                guard index + 2 < bytes.count, let high = Self.hexValue(bytes[index + 1]), let low = Self.hexValue(bytes[index + 2]) else {
                    throw .invalidParams("path holds a malformed percent-encoding")
                }
                decoded.append(high << 4 | low)
                index += 3
            } else {
                decoded.append(bytes[index])
                index += 1
            }
        }
        return decoded
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    private static func isPathByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "/"):
            true
        default: false
        }
    }
}
