import BrokerCore

/// A JSON-RPC error object: the contract's codes, a helpful message, optional data.
public struct RPCError: Error, Sendable, Equatable {
    public var code: Int
    public var message: String
    public var data: JSONValue?

    public init(code: Int, message: String, data: JSONValue? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }

    public static let parseErrorCode = -32700
    public static let invalidRequestCode = -32600
    public static let methodNotFoundCode = -32601
    public static let invalidParamsCode = -32602
    public static let internalErrorCode = -32603
    public static let unknownTenantCode = -32001
    public static let permissionDeniedCode = -32002
    public static let upstreamRejectedCode = -32003
    public static let upstreamUnavailableCode = -32004

    public static func parseError(_ detail: String) -> RPCError {
        RPCError(code: Self.parseErrorCode, message: "parse error: \(detail)")
    }

    public static func invalidRequest(_ detail: String) -> RPCError {
        RPCError(code: Self.invalidRequestCode, message: "invalid request: \(detail)")
    }

    public static func methodNotFound(_ method: String) -> RPCError {
        RPCError(code: Self.methodNotFoundCode, message: "method not found: \(method)")
    }

    public static func invalidParams(_ detail: String) -> RPCError {
        RPCError(code: Self.invalidParamsCode, message: "invalid params: \(detail)")
    }

    public static func internalError(_ detail: String) -> RPCError {
        RPCError(code: Self.internalErrorCode, message: "internal error: \(detail)")
    }

    /// The JSON-RPC view of a token engine failure.
    public init(_ error: TokenError) {
        switch error {
        case .unknownTenant, .unknownRegion:
            self.init(code: Self.unknownTenantCode, message: error.description)
        case .regionRequired:
            self.init(code: Self.invalidParamsCode, message: "invalid params: \(error.description)")
        case .upstream(let upstream):
            self.init(upstream)
        case .storage:
            self.init(code: Self.internalErrorCode, message: "internal error: \(error.description)")
        }
    }

    /// The JSON-RPC view of an upstream failure: -32003 with Sobot's code, or -32004.
    public init(_ error: SobotError) {
        switch error {
        case .rejected(let code, let message):
            self.init(
                code: Self.upstreamRejectedCode,
                message: error.description,
                data: ["ret_code": .string(code), "ret_msg": .string(message)]
            )
        case .unavailable:
            self.init(code: Self.upstreamUnavailableCode, message: error.description)
        }
    }

    public init(_ error: ModuleError) {
        switch error {
        case .invalidParams(let detail): self = .invalidParams(detail)
        case .methodNotFound(let method, let reason):
            self.init(code: Self.methodNotFoundCode, message: "method not found: \(method) (\(reason))")
        case .token(let tokenError): self.init(tokenError)
        case .upstream(let upstream): self.init(upstream)
        case .internalError(let detail): self = .internalError(detail)
        }
    }

    var json: JSONValue {
        var object: [String: JSONValue] = ["code": .integer(Int64(self.code)), "message": .string(self.message)]
        if let data = self.data { object["data"] = data }
        return .object(object)
    }
}
