/// How an endpoint-module method fails; the server maps each case to a JSON-RPC error code.
public enum ModuleError: Error, Sendable, Equatable {
    case invalidParams(String)
    case methodNotFound(String, reason: String)
    case token(TokenError)
    case upstream(SobotError)
    case internalError(String)
}
