import BrokerCore
import NIOHTTP1

/// What the proxy answers: Sobot's status, content type and body for a forwarded call, or the
/// broker's own JSON (`/_broker/…` endpoints and errors).
struct ProxyResponse: Sendable {
    var status: HTTPResponseStatus
    var contentType: String
    var body: [UInt8]

    static func json(_ value: JSONValue, status: HTTPResponseStatus = .ok) -> ProxyResponse {
        ProxyResponse(status: status, contentType: "application/json", body: JSONWriter.bytes(value))
    }

    /// The broker's own error, `{"error":{"code","message"}}`, with the status the contract maps its
    /// code to.
    static func error(_ error: RPCError, status: HTTPResponseStatus? = nil) -> ProxyResponse {
        var object: [String: JSONValue] = ["code": .integer(Int64(error.code)), "message": .string(error.message)]
        if let data = error.data { object["data"] = data }
        return .json(["error": .object(object)], status: status ?? Self.status(for: error.code))
    }

    static func error(code: Int, message: String, status: HTTPResponseStatus? = nil) -> ProxyResponse {
        .error(RPCError(code: code, message: message), status: status)
    }

    /// The contract's mapping of error codes to HTTP statuses.
    static func status(for code: Int) -> HTTPResponseStatus {
        switch code {
        case ErrorCode.parseError, ErrorCode.invalidRequest, ErrorCode.invalidParams: .badRequest
        case ErrorCode.permissionDenied: .forbidden
        case ErrorCode.unknownTenant, ErrorCode.methodNotFound: .notFound
        case ErrorCode.upstreamRejected: .badGateway
        case ErrorCode.upstreamUnavailable: .gatewayTimeout
        default: .internalServerError
        }
    }
}
