import BrokerModuleSDK

/// Why a call to the broker failed: it could not be reached, it answered something unreadable, or it
/// answered with a JSON-RPC error (the contract's codes, see `ErrorCode`). Never holds a token.
public enum BrokerCallError: Error, Sendable, Equatable, CustomStringConvertible {
    /// No daemon at the socket, or the connection failed or timed out.
    case unavailable(String)
    /// The reply was not a JSON-RPC reply.
    case badReply(String)
    /// The daemon answered with an error.
    case rejected(code: Int, message: String, data: JSONValue?)

    /// The JSON-RPC error code, for `rejected`.
    public var code: Int? {
        if case .rejected(let code, _, _) = self { return code }
        return nil
    }

    public var description: String {
        switch self {
        case .unavailable(let reason): "the broker is unavailable: \(reason)"
        case .badReply(let reason): "unreadable reply from the broker: \(reason)"
        case .rejected(let code, let message, _): "\(message) (\(code))"
        }
    }
}

/// Thrown by a `withToken` body when Sobot answered `900002` (token expired): the token is reported
/// with `token.invalidate` and the body runs once more with the fresh one.
public struct SobotTokenExpired: Error, Sendable {
    public init() {}
}
