/// The contract's JSON-RPC error codes, and how every broker failure maps onto them. Kept in the core
/// so the server's error replies and a module's per-tenant error objects always agree.
public enum ErrorCode {
    public static let parseError = -32700
    public static let invalidRequest = -32600
    public static let methodNotFound = -32601
    public static let invalidParams = -32602
    public static let internalError = -32603
    public static let unknownTenant = -32001
    public static let permissionDenied = -32002
    public static let upstreamRejected = -32003
    public static let upstreamUnavailable = -32004
}

extension ModuleError {
    /// The JSON-RPC error code for this failure.
    public var code: Int {
        switch self {
        case .invalidParams: ErrorCode.invalidParams
        case .methodNotFound: ErrorCode.methodNotFound
        case .token(.unknownTenant), .token(.unknownRegion): ErrorCode.unknownTenant
        case .token(.regionRequired): ErrorCode.invalidParams
        case .token(.upstream(let upstream)), .upstream(let upstream): Self.code(for: upstream)
        case .token(.storage), .internalError: ErrorCode.internalError
        case .token(.uncoordinated): ErrorCode.upstreamUnavailable
        }
    }

    private static func code(for error: SobotError) -> Int {
        switch error {
        case .rejected: ErrorCode.upstreamRejected
        case .unavailable: ErrorCode.upstreamUnavailable
        }
    }

    public var message: String {
        switch self {
        case .invalidParams(let detail): "invalid params: \(detail)"
        case .methodNotFound(let method, let reason): "method not found: \(method) (\(reason))"
        case .token(let error):
            switch error {
            case .regionRequired: "invalid params: \(error)"
            case .storage: "internal error: \(error)"
            default: error.description
            }
        case .upstream(let error): error.description
        case .internalError(let detail): "internal error: \(detail)"
        }
    }

    /// `{ret_code, ret_msg}` for upstream rejections.
    public var data: JSONValue? {
        switch self {
        case .token(.upstream(.rejected(let code, let message))), .upstream(.rejected(let code, let message)):
            ["ret_code": .string(code), "ret_msg": .string(message)]
        default: nil
        }
    }

    /// The error as a JSON-RPC error object.
    public var errorObject: JSONValue {
        var object: [String: JSONValue] = ["code": .integer(Int64(self.code)), "message": .string(self.message)]
        if let data = self.data { object["data"] = data }
        return .object(object)
    }
}
