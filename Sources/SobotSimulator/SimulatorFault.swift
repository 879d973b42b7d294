import BrokerCore

/// A misbehaviour the simulator can be told to show, to test the broker's handling of a failing or
/// lying upstream. The failures apply to every endpoint; the hostile tokens to `get_token` only.
public enum SimulatorFault: Sendable, Equatable {
    case none
    /// Answer with this HTTP status and a non-JSON body.
    case httpStatus(Int)
    /// Accept the request and never answer.
    case hang
    /// Answer 200 with a body that is not JSON.
    case garbage
    /// Answer 200 with this `ret_code`.
    case returnCode(String)
    /// Answer normally after this delay.
    case latency(milliseconds: Int)
    /// `get_token` succeeds but states this `expires_in` (any JSON value: `1e308`, `"1e308"`, `-1`…).
    case expiresIn(JSONValue)
    /// `get_token` issues a token of this many bytes (printable ASCII).
    case tokenLength(Int)
    /// `get_token` issues exactly this token (spaces, CR/LF, non-ASCII…).
    case token(String)

    /// The longest hostile token the simulator makes.
    public static let maximumTokenLength = 1 << 20
    /// The longest latency the simulator adds, in milliseconds (an hour).
    public static let maximumLatency = 3_600_000

    /// Parses the admin endpoint's names: `none`, `http500`, `hang`, `garbage`, `ret:999999`,
    /// `latency:250`, `expires_in:1e308` (a JSON value, else the text as a string), `token_length:70000`,
    /// `token:<text>`. Numbers out of range are refused (nil), never trapped on.
    public init?(name: String) {
        switch name {
        case "none": self = .none
        case "hang": self = .hang
        case "garbage": self = .garbage
        default:
            if name.hasPrefix("http"), let status = Int(name.dropFirst(4)), (100...599).contains(status) {
                self = .httpStatus(status)
            } else if name.hasPrefix("ret:") {
                self = .returnCode(String(name.dropFirst(4)))
            } else if name.hasPrefix("latency:"), let milliseconds = Int(name.dropFirst(8)), (0...Self.maximumLatency).contains(milliseconds) {
                self = .latency(milliseconds: milliseconds)
            } else if name.hasPrefix("expires_in:") {
                let text = name.dropFirst(11)
                self = .expiresIn((try? JSONParser.parse(Array(text.utf8))) ?? .string(String(text)))
            } else if name.hasPrefix("token_length:"), let length = Int(name.dropFirst(13)), (1...Self.maximumTokenLength).contains(length) {
                self = .tokenLength(length)
            } else if name.hasPrefix("token:") {
                self = .token(String(name.dropFirst(6)))
            } else {
                return nil
            }
        }
    }
}
