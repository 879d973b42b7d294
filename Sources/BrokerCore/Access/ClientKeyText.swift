/// The text of a client key: `sbk_<id>_<secret>`, where `<id>` is 12 lowercase hex digits (the key's
/// public id, 48 random bits) and `<secret>` 64 (256 random bits from `SecureRandom`).
///
/// Only the SHA-256 of the secret is ever stored; the whole text is shown once, by `access key
/// create`. Neither `description` nor a mirror of a value holds the secret, so interpolating one into
/// a log line or an error shows `sbk_<id>_…` and nothing that opens anything.
public struct ClientKeyText: Sendable, CustomStringConvertible, CustomReflectable {
    public static let prefix = "sbk_"
    static let idLength = 12
    static let secretLength = 64
    /// The length of every key's text: anything longer or shorter is refused before any lookup.
    public static let length = Self.prefix.utf8.count + Self.idLength + 1 + Self.secretLength

    public let id: String
    /// The secret's hex digits, as ASCII bytes: what is hashed.
    private let secret: [UInt8]

    private init(id: String, secret: [UInt8]) {
        self.id = id
        self.secret = secret
    }

    /// Reads a presented key; nil for anything but exactly the format above, which says nothing
    /// about whether such a key exists.
    public init?(parsing text: some StringProtocol) {
        // The length first: an oversized header is refused without being copied.
        guard text.utf8.count == Self.length else { return nil }
        let bytes = Array(text.utf8)
        let idStart = Self.prefix.utf8.count
        let secretStart = idStart + Self.idLength + 1
        guard bytes[..<idStart].elementsEqual(Self.prefix.utf8), bytes[secretStart - 1] == UInt8(ascii: "_"),
            Self.isLowercaseHex(bytes[idStart..<secretStart - 1]), Self.isLowercaseHex(bytes[secretStart...])
        else { return nil }
        self.init(id: String(decoding: bytes[idStart..<secretStart - 1], as: UTF8.self), secret: Array(bytes[secretStart...]))
    }

    /// A new key, every bit of it from `SecureRandom`.
    public static func generate() throws(OpenSSLError) -> ClientKeyText {
        let id = Hex.encode(try SecureRandom.bytes(Self.idLength / 2))
        let secret = Hex.encode(try SecureRandom.bytes(Self.secretLength / 2))
        return ClientKeyText(id: id, secret: Array(secret.utf8))
    }

    /// Whether `text` has the shape of a key's id (not whether such a key exists).
    public static func isValidID(_ text: some StringProtocol) -> Bool {
        text.utf8.count == Self.idLength && Self.isLowercaseHex(text.utf8)
    }

    /// The SHA-256 of the secret: what is stored, and what a presented key is compared by.
    public var secretHash: [UInt8] { SHA256.digest(self.secret) }

    /// The whole key, to show its owner once.
    public var revealed: String { Self.prefix + self.id + "_" + String(decoding: self.secret, as: UTF8.self) }

    public var description: String { "\(Self.prefix)\(self.id)_…" }

    public var customMirror: Mirror { Mirror(self, children: ["id": self.id]) }

    private static func isLowercaseHex(_ bytes: some Sequence<UInt8>) -> Bool {
        bytes.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }
    }
}
