import Logging
import PostgresNIO
import Synchronization

/// How a database failure is described in a log line or an error reply: one short line that never
/// holds a bound value. PostgresNIO's `PSQLError` describes itself without its details for the same
/// reason; its SQLSTATE, when the server sent one, is safe to show and says what went wrong.
public enum DatabaseFailure {
    public static func summary(of error: any Error) -> String {
        if let error = error as? PSQLError {
            if let state = error.serverInfo?[.sqlState] { return "PostgreSQL error \(state)" }
            return "PostgreSQL \(error.code)"
        }
        return String(String(describing: error).prefix(200))
    }
}

/// Logs a database outage once when it starts and once when it ends, however many callers meet it:
/// "one line per outage, not one per key".
public final class OutageLog: Sendable {
    private let down = Mutex<Bool>(false)
    private let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    public var isDown: Bool { self.down.withLock { $0 } }

    public func failed(_ error: any Error) {
        // A call cut short by shutdown is not an outage.
        guard !Task.isCancelled, !(error is CancellationError) else { return }
        let started = self.down.withLock { down in
            defer { down = true }
            return !down
        }
        if started {
            self.logger.error(
                "cluster database unreachable: serving the tokens held, fetching none until it is back",
                metadata: ["error": "\(DatabaseFailure.summary(of: error))"]
            )
        }
    }

    public func succeeded() {
        let ended = self.down.withLock { down in
            defer { down = false }
            return down
        }
        if ended { self.logger.notice("cluster database reachable again; catching up") }
    }
}
