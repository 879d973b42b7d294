/// How a call to Sobot failed. Descriptions never include the token, the sign or the app key.
public enum SobotError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Sobot answered with a `ret_code` other than `000000`.
    case rejected(retCode: String, retMsg: String)
    /// No usable answer: network failure, timeout, HTTP 5xx, or a body that is not a Sobot reply.
    case unavailable(String)

    /// Worth retrying later (with backoff). Signature, configuration and edition errors are not:
    /// retrying them only hammers Sobot until an operator fixes the credential.
    public var isRecoverable: Bool {
        switch self {
        case .unavailable: true
        case .rejected(let code, _): SobotReturnCode.recoverable.contains(code)
        }
    }

    public var description: String {
        switch self {
        case .rejected(let code, let message):
            "Sobot rejected the call: \(code) \(message.isEmpty ? SobotReturnCode.meaning(of: code) : message)"
        case .unavailable(let reason):
            "Sobot is unavailable: \(reason)"
        }
    }
}

/// The documented `ret_code` values.
public enum SobotReturnCode {
    public static let success = "000000"
    public static let tokenEmpty = "900001"
    public static let tokenExpired = "900002"
    public static let signatureError = "900003"
    public static let noAPIConfiguration = "900004"
    public static let editionNotAllowed = "700046"
    public static let parameterException = "999994"
    public static let unknownError = "999999"

    static let recoverable: Set<String> = [unknownError]
    /// Refusals only an operator can fix: the signature (appid or key), the company's API set-up, the edition.
    static let credentialProblems: Set<String> = [signatureError, noAPIConfiguration, editionNotAllowed]

    public static func meaning(of code: String) -> String {
        switch code {
        case tokenEmpty: "token empty"
        case tokenExpired: "token expired"
        case signatureError: "signature error"
        case noAPIConfiguration: "no API configuration for the company"
        case editionNotAllowed: "edition does not allow the API"
        case parameterException: "parameter exception"
        case unknownError: "unknown error"
        default: "undocumented error"
        }
    }
}
