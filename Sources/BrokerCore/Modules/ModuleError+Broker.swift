/// How the broker's own failures reach a module and its callers.
extension ModuleError {
    public init(_ error: TokenError) {
        switch error {
        case .unknownTenant, .unknownRegion:
            self.init(code: ErrorCode.unknownTenant, message: error.description)
        case .regionRequired:
            self.init(code: ErrorCode.invalidParams, message: "invalid params: \(error)")
        case .upstream(let upstream):
            self.init(upstream)
        case .storage:
            self.init(code: ErrorCode.internalError, message: "internal error: \(error)")
        case .uncoordinated:
            self.init(code: ErrorCode.upstreamUnavailable, message: error.description)
        }
    }

    public init(_ error: SobotError) {
        switch error {
        case .rejected(let code, let message):
            self.init(code: ErrorCode.upstreamRejected, message: error.description, data: ["ret_code": .string(code), "ret_msg": .string(message)])
        case .unavailable:
            self.init(code: ErrorCode.upstreamUnavailable, message: error.description)
        }
    }
}
