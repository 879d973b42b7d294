import Logging
import NIOCore
import PostgresNIO
import Synchronization

/// The connection pool with every wait bounded by one timeout, so a database that went away fails a
/// call within seconds, with a one-line reason, instead of leaving it waiting for a connection.
///
/// Both waits are bounded: for a pooled connection (the pool keeps trying to connect and would let a
/// caller wait for ever), and for each statement's answer (postgres-nio cannot cancel a running
/// statement, so the connection is closed, which fails it at once and makes the server roll back).
struct BoundedPool: Sendable {
    let client: PostgresClient
    let timeout: Duration
    /// For postgres-nio, at `.warning` or quieter: its trace output holds the rows, sealed secrets included.
    let logger: Logger
    /// Explains a connection timeout: one direct connection attempt, bounded like everything else,
    /// whose failure says why the pool has no connection (refused, wrong password, no such database).
    let diagnose: @Sendable () async -> String

    /// Runs `body` on a pooled connection. Database failures become a `PostgresStoreError` naming
    /// `operation` (a phrase after "cannot"); every other error travels unchanged.
    func withSession<Result: Sendable>(
        _ operation: String,
        _ body: @escaping @Sendable (Session) async throws -> Result
    ) async throws -> Result {
        do {
            return try await self.leasing(body)
        } catch is ConnectionWaitTimeout {
            throw PostgresStoreError.timedOut(operation: operation, seconds: self.timeout.seconds, waitingFor: .connection, cause: await self.diagnose())
        } catch is AnswerTimeout {
            throw PostgresStoreError.timedOut(operation: operation, seconds: self.timeout.seconds, waitingFor: .answer, cause: nil)
        } catch is ConnectionClosed {
            throw PostgresStoreError.connection(operation: operation, reason: "the connection was closed")
        } catch {
            throw PostgresStoreError.wrapping(error, operation: operation) ?? error
        }
    }

    /// Runs `body` in a transaction opened with `begin`, committed when `body` returns (rolled back
    /// instead when `commit` is false) and rolled back when it throws.
    func withTransaction<Result: Sendable>(
        _ operation: String,
        begin: PostgresQuery = "BEGIN",
        commit: Bool = true,
        _ body: @escaping @Sendable (Session) async throws -> Result
    ) async throws -> Result {
        try await self.withSession(operation) { session in
            try await session.execute(begin)
            let result: Result
            do {
                result = try await body(session)
            } catch {
                // A closed connection's transaction is rolled back by the server.
                if !session.connection.isClosed {
                    do {
                        try await session.execute("ROLLBACK")
                    } catch {
                        // Never hand a connection back to the pool inside a transaction.
                        try? await session.connection.close()
                    }
                }
                throw error
            }
            try await session.execute(commit ? "COMMIT" : "ROLLBACK")
            return result
        }
    }

    /// Leases a connection, giving up after the timeout; `body` then runs unhurried (its statements
    /// are bounded one by one).
    private func leasing<Result: Sendable>(_ body: @escaping @Sendable (Session) async throws -> Result) async throws -> Result {
        let leased = LeaseFlag()
        return try await withThrowingTaskGroup(of: LeaseOutcome<Result>.self) { group in
            group.addTask {
                try await self.client.withConnection { connection in
                    leased.set()
                    return .finished(try await body(Session(connection: connection, timeout: self.timeout, logger: self.logger)))
                }
            }
            group.addTask {
                try await Task.sleep(for: self.timeout)
                guard leased.isSet else { throw ConnectionWaitTimeout() }
                return .leasedInTime
            }
            while let outcome = try await group.next() {
                if case .finished(let result) = outcome {
                    group.cancelAll()
                    return result
                }
            }
            preconditionFailure("the leasing task either finishes or throws")
        }
    }
}

/// A leased connection whose every statement is bounded by the timeout.
struct Session: Sendable {
    let connection: PostgresConnection
    let timeout: Duration
    let logger: Logger

    /// Runs `query` and collects its rows, or throws once the timeout passes. postgres-nio cannot
    /// cancel a statement, so the connection is then closed: that fails the statement, makes the
    /// server roll its transaction back, and has the pool drop the connection. The wait ends at the
    /// timeout even if postgres-nio never answers (a statement written to an already closed channel).
    @discardableResult
    func query(_ query: PostgresQuery) async throws -> [PostgresRow] {
        let connection = self.connection
        guard !connection.isClosed else { throw ConnectionClosed() }
        let logger = self.logger
        let answer = FirstAnswer()
        return try await withCheckedThrowingContinuation { continuation in
            answer.await(continuation)
            let timer = connection.eventLoop.scheduleTask(in: TimeAmount(self.timeout)) {
                if answer.resume(with: .failure(AnswerTimeout())) {
                    connection.close().whenComplete { _ in }
                }
            }
            Task {
                let result: Result<[PostgresRow], any Error>
                do {
                    result = .success(try await connection.query(query, logger: logger).collect())
                } catch {
                    result = .failure(error)
                }
                timer.cancel()
                answer.resume(with: result)
            }
        }
    }

    func execute(_ query: PostgresQuery) async throws {
        try await self.query(query)
    }
}

/// A continuation that the first of two racers resumes; the second is ignored.
private final class FirstAnswer: Sendable {
    private let continuation = Mutex<CheckedContinuation<[PostgresRow], any Error>?>(nil)

    func await(_ continuation: CheckedContinuation<[PostgresRow], any Error>) {
        self.continuation.withLock { $0 = continuation }
    }

    /// Resumes the waiter with `result`; returns false when it was resumed already.
    @discardableResult
    func resume(with result: Result<[PostgresRow], any Error>) -> Bool {
        guard let continuation = self.continuation.withLock({ $0.take() }) else { return false }
        continuation.resume(with: result)
        return true
    }
}

/// `operation`'s result, or nil when `limit` passes first; the operation is then cancelled.
func withTimeLimit<Result: Sendable>(_ limit: Duration, _ operation: @escaping @Sendable () async throws -> Result) async throws -> Result? {
    try await withThrowingTaskGroup(of: Result?.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

/// What each of the two racing tasks of `leasing` came to.
private enum LeaseOutcome<Result: Sendable>: Sendable {
    case finished(Result)
    case leasedInTime
}

private struct ConnectionWaitTimeout: Error {}
private struct AnswerTimeout: Error {}
/// A statement on a connection that a timeout (or the server) already closed.
private struct ConnectionClosed: Error {}

/// Whether a connection was leased: a flag two tasks share (an `Atomic` itself cannot be captured).
private final class LeaseFlag: Sendable {
    private let value = Atomic(false)

    func set() { self.value.store(true, ordering: .relaxed) }
    var isSet: Bool { self.value.load(ordering: .relaxed) }
}

extension Duration {
    var seconds: Double {
        let (seconds, attoseconds) = self.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
