/// A freshly issued token as Sobot returned it, checked against the bounds the broker accepts.
///
/// A hostile or broken upstream must never reach the token engine with a value that traps or
/// poisons later work: a lifetime of `1e308` overflows every time conversion, one of 99999999999 s
/// would schedule the next refresh centuries away, and a 70 KB token (or one holding CR/LF) cannot
/// be sent back as an HTTP header. Such replies are unreadable, like a reply that is not JSON.
public struct IssuedToken: Sendable {
    /// Seconds of lifetime the broker accepts. Sobot documents at most 86,400 s; a week leaves headroom.
    public static let lifetimeRange: ClosedRange<Double> = 1...604_800
    /// The longest token value accepted, in bytes.
    public static let maximumLength = 4096

    public let value: String
    /// Seconds the token is valid for, as the upstream stated: always within `lifetimeRange`.
    public let lifetime: Double

    /// The token in `get_token`'s reply object (`item.token`, `item.expires_in`), or why it is unreadable.
    /// `expires_in` may be a JSON number or a numeric string; the messages never hold the token.
    public init(reply: JSONValue) throws(SobotError) {
        guard let item = reply["item"], let token = item["token"]?.stringValue, !token.isEmpty else {
            throw .unavailable("unreadable reply: no item.token")
        }
        guard Self.isWellFormed(token) else {
            throw .unavailable(
                "unreadable reply: item.token is longer than \(Self.maximumLength) bytes or holds characters other than printable ASCII"
            )
        }
        // `contains` is false for NaN, so every non-finite or out-of-range value ends here.
        guard let lifetime = item["expires_in"]?.doubleValue, Self.lifetimeRange.contains(lifetime) else {
            throw .unavailable(
                "unreadable reply: expires_in is not a number of seconds from \(Int(Self.lifetimeRange.lowerBound)) to \(Int(Self.lifetimeRange.upperBound))"
            )
        }
        self.value = token
        self.lifetime = lifetime
    }

    /// Whether a persisted token may be served: its value is well formed, its stamps (Unix seconds)
    /// span an accepted lifetime, and it expires no later than the longest one from `now`. A row from
    /// a broker without these checks, or written by hand, is treated as missing and fetched again.
    public static func isServable(storedValue value: String, issuedAt: Int64, expiresAt: Int64, now: Int64) -> Bool {
        // In Double: the difference of two hostile Int64s could overflow.
        Self.isWellFormed(value) && Self.lifetimeRange.contains(Double(expiresAt) - Double(issuedAt))
            && Double(expiresAt) - Double(now) <= Self.lifetimeRange.upperBound
    }

    /// Whether `value` may be used as a token: 1 to `maximumLength` bytes of printable ASCII
    /// (0x21–0x7E), so it is always a valid HTTP header value. Stored tokens are held to it too.
    public static func isWellFormed(_ value: String) -> Bool {
        let bytes = value.utf8
        return (1...Self.maximumLength).contains(bytes.count) && bytes.allSatisfy { (0x21...0x7e).contains($0) }
    }
}
