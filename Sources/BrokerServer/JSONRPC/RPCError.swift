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

    public static let parseErrorCode = ErrorCode.parseError
    public static let invalidRequestCode = ErrorCode.invalidRequest
    public static let methodNotFoundCode = ErrorCode.methodNotFound
    public static let invalidParamsCode = ErrorCode.invalidParams
    public static let internalErrorCode = ErrorCode.internalError
    public static let unknownTenantCode = ErrorCode.unknownTenant
    public static let permissionDeniedCode = ErrorCode.permissionDenied
    public static let upstreamRejectedCode = ErrorCode.upstreamRejected
    public static let upstreamUnavailableCode = ErrorCode.upstreamUnavailable

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

    /// The JSON-RPC view of a broker failure (mapping in `ModuleError.code`).
    public init(_ error: ModuleError) {
        self.init(code: error.code, message: error.message, data: error.data)
    }

    public init(_ error: TokenError) {
        self.init(ModuleError(error))
    }

    var json: JSONValue {
        var object: [String: JSONValue] = ["code": .integer(Int64(self.code)), "message": .string(self.message)]
        if let data = self.data { object["data"] = data }
        return .object(object)
    }
}
