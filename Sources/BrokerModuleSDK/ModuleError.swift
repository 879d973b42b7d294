/// How an endpoint-module method fails: a JSON-RPC error code (see `ErrorCode`), a one-line
/// secret-free message, and optional data.
///
/// A struct rather than an enum so that new kinds of failure can be added without breaking a
/// module that switches on the ones it knows: compare `code`, or use the constructors below.
public struct ModuleError: Error, Sendable, Equatable, CustomStringConvertible {
    public let code: Int
    public let message: String
    /// `{ret_code, ret_msg}` for upstream rejections; nil otherwise.
    public let data: JSONValue?

    public init(code: Int, message: String, data: JSONValue? = nil) {
        self.code = code
        self.message = message
        self.data = data
    }

    public static func invalidParams(_ detail: String) -> ModuleError {
        ModuleError(code: ErrorCode.invalidParams, message: "invalid params: \(detail)")
    }

    public static func methodNotFound(_ method: String, reason: String) -> ModuleError {
        ModuleError(code: ErrorCode.methodNotFound, message: "method not found: \(method) (\(reason))")
    }

    public static func internalError(_ detail: String) -> ModuleError {
        ModuleError(code: ErrorCode.internalError, message: "internal error: \(detail)")
    }

    /// Sobot answered with a `ret_code` other than `000000`.
    public static func upstreamRejected(retCode: String, retMessage: String) -> ModuleError {
        ModuleError(
            code: ErrorCode.upstreamRejected,
            message: "Sobot rejected the call: \(retCode) \(retMessage)",
            data: ["ret_code": .string(retCode), "ret_msg": .string(retMessage)]
        )
    }

    /// No usable answer from Sobot: network, timeout, HTTP 5xx, or a reply that cannot be read.
    public static func upstreamUnavailable(_ reason: String) -> ModuleError {
        ModuleError(code: ErrorCode.upstreamUnavailable, message: "Sobot is unavailable: \(reason)")
    }

    public var description: String { self.message }

    /// The error as a JSON-RPC error object.
    public var errorObject: JSONValue {
        var object: [String: JSONValue] = ["code": .integer(Int64(self.code)), "message": .string(self.message)]
        if let data = self.data { object["data"] = data }
        return .object(object)
    }
}
