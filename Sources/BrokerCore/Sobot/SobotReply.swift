/// Decoding of Sobot's reply bodies, apart from the transport so it can be fuzzed as a whole.
///
/// Every failure is a `SobotError`; nothing a reply holds can trap.
public enum SobotReply {
    /// A reply's meaning: the reply object when `ret_code` is `000000`, otherwise the error.
    public static func interpret(status: UInt, body: [UInt8]) throws(SobotError) -> JSONValue {
        if status >= 500 { throw .unavailable("HTTP \(status)") }
        guard let reply = try? JSONParser.parse(body), case .object = reply else {
            throw .unavailable("unreadable reply (HTTP \(status), not a JSON object)")
        }
        guard let code = Self.returnCode(reply) else {
            throw .unavailable("unreadable reply (HTTP \(status), no ret_code)")
        }
        guard code == SobotReturnCode.success else {
            throw .rejected(
                retCode: Self.printable(code, limit: Self.maximumCodeLength),
                retMsg: Self.printable(reply["ret_msg"]?.stringValue ?? "", limit: Self.maximumMessageLength)
            )
        }
        return reply
    }

    /// How much of an upstream `ret_code` and `ret_msg` reaches logs and clients, in characters.
    static let maximumCodeLength = 32
    static let maximumMessageLength = 256

    /// `text` as one bounded line: control characters become spaces and the rest is cut off with "…",
    /// so an upstream's message can neither flood nor forge log lines.
    static func printable(_ text: String, limit: Int) -> String {
        var line = ""
        for character in text.prefix(limit) {
            line.append(character.unicodeScalars.contains { $0.properties.generalCategory == .control } ? " " : character)
        }
        return text.count > limit ? line + "…" : line
    }

    /// A whole `get_token` reply: the token, once the reply is a success and its token is acceptable.
    public static func token(status: UInt, body: [UInt8]) throws(SobotError) -> IssuedToken {
        try IssuedToken(reply: Self.interpret(status: status, body: body))
    }

    /// `ret_code` as six digits: Sobot sends a string, or sometimes a number that lost its leading zeros.
    static func returnCode(_ reply: JSONValue) -> String? {
        switch reply["ret_code"] {
        case .string(let code): return code
        case .integer(let number):
            let digits = String(number)
            return String(repeating: "0", count: max(0, 6 - digits.count)) + digits
        default: return nil
        }
    }
}
