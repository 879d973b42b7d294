import PostgresNIO

/// Why a PostgreSQL store operation failed, in one line. It carries PostgreSQL's SQLSTATE where there is
/// one, but never a bound value: no key, token or sealed secret can reach an error message.
public enum PostgresStoreError: Error, Sendable, CustomStringConvertible {
    /// No pooled connection, or no answer to a statement, within the store's timeout.
    case timedOut(operation: String, seconds: Double, waitingFor: Wait, cause: String?)
    /// The server refused a statement. `message` is PostgreSQL's, left out for data exceptions
    /// (SQLSTATE class 22), whose messages may quote a value.
    case server(operation: String, sqlState: String, message: String?)
    /// Connecting failed, or the connection broke.
    case connection(operation: String, reason: String)
    /// `key rotate` on a cluster: live brokers whose key file lacks the version the rotation would seal with.
    case keyVersionMissing(keyID: UInt32, brokers: [ClusterMember])

    public enum Wait: Sendable {
        case connection
        case answer
    }

    /// PostgreSQL's five-character error code, when the server reported the failure.
    public var sqlState: String? {
        if case .server(_, let sqlState, _) = self { return sqlState }
        return nil
    }

    public var description: String {
        switch self {
        case .timedOut(let operation, let seconds, .connection, let cause):
            "PostgreSQL: cannot \(operation): no connection within \(seconds.formatted) s" + (cause.map { ": \($0)" } ?? "")
        case .timedOut(let operation, let seconds, .answer, _):
            "PostgreSQL: cannot \(operation): no answer within \(seconds.formatted) s; the connection was closed"
        case .server(let operation, let sqlState, let message):
            "PostgreSQL: cannot \(operation): SQLSTATE \(sqlState)" + (message.map { ": \($0)" } ?? "") + Self.hint(sqlState)
        case .connection(let operation, let reason):
            "PostgreSQL: cannot \(operation): \(reason)"
        case .keyVersionMissing(let keyID, let brokers):
            "key rotation refused: "
                + brokers.map { "broker \($0.id) on \($0.host)" }.joined(separator: ", ")
                + " \(brokers.count == 1 ? "lacks" : "lack") master key version \(keyID): copy this host's master key file "
                + "(it holds version \(keyID) now) to \(brokers.count == 1 ? "that host" : "those hosts"), send "
                + "\(brokers.count == 1 ? "that broker" : "those brokers") SIGHUP, then run key rotate again"
        }
    }

    private static func hint(_ sqlState: String) -> String {
        switch sqlState {
        case "42P01": " (the schema is missing: run sobot-broker init)"
        default: ""
        }
    }

    /// `error` as a store error for `operation`, or nil when it is not a database failure (a
    /// `StoreError`, a sealing failure) and should travel as it is.
    static func wrapping(_ error: any Error, operation: String) -> PostgresStoreError? {
        guard let error = error as? PSQLError else { return nil }
        if let sqlState = error.serverInfo?[.sqlState] {
            let message = sqlState.hasPrefix("22") ? nil : error.serverInfo?[.message]
            return .server(operation: operation, sqlState: sqlState, message: message.map(Self.oneLine))
        }
        return .connection(operation: operation, reason: Self.reason(error))
    }

    /// A one-line reason for any error met while connecting: the server's SQLSTATE and message, or the
    /// client's failure.
    static func explain(_ error: any Error) -> String {
        switch Self.wrapping(error, operation: "connect") {
        case .server(_, let sqlState, let message)?:
            "SQLSTATE \(sqlState)" + (message.map { ": \($0)" } ?? "")
        case .connection(_, let reason)?:
            reason
        default:
            Self.oneLine(String(describing: error))
        }
    }

    private static func reason(_ error: PSQLError) -> String {
        let underlying = error.underlying.map { Self.oneLine(String(describing: $0)) }
        switch error.code {
        case .connectionError:
            return "cannot connect" + (underlying.map { ": \($0)" } ?? "")
        case .sslUnsupported:
            return "the server does not offer TLS, which sslmode requires"
        case .failedToAddSSLHandler:
            return "TLS failed" + (underlying.map { ": \($0)" } ?? "")
        case .authMechanismRequiresPassword:
            return "the server asks for a password and none was given (PGPASSWORD, or the password in SOBOT_BROKER_DATABASE_URL)"
        case .unsupportedAuthMechanism:
            return "the server asks for an authentication method that is not supported"
        case .saslError:
            return "SCRAM authentication failed" + (underlying.map { ": \($0)" } ?? "")
        case .serverClosedConnection, .clientClosedConnection, .uncleanShutdown:
            return "the connection was closed" + (underlying.map { ": \($0)" } ?? "")
        default:
            return "client error \(error.code)"
        }
    }

    private static func oneLine(_ text: String) -> String {
        String(text.map { $0.isNewline ? " " : $0 })
    }
}

extension Double {
    /// Seconds as an operator reads them: `5`, `0.5`.
    fileprivate var formatted: String {
        self == self.rounded() ? String(Int(self)) : String(self)
    }
}
