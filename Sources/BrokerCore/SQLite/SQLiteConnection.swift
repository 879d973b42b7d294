import CSQLite

/// One SQLite connection. Not thread-safe by itself: its owner serialises access.
///
/// Blocking: never call it from a NIO event loop (the token engine offloads to a thread pool).
public final class SQLiteConnection {
    let handle: OpaquePointer
    private var statementCache: [String: SQLiteStatement] = [:]

    /// Opens (creating if needed) the database at `path` in WAL mode with a busy timeout.
    public init(path: String, busyTimeoutMilliseconds: Int32 = 5_000) throws(SQLiteError) {
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let code = sqlite3_open_v2(path, &handle, flags, nil)
        guard code == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open database"
            if let handle { sqlite3_close_v2(handle) }
            throw SQLiteError(resultCode: code, message: "\(message) (\(path))")
        }
        self.handle = handle
        sqlite3_extended_result_codes(handle, 1)
        sqlite3_busy_timeout(handle, busyTimeoutMilliseconds)
        try self.execute("PRAGMA journal_mode = WAL")
        try self.execute("PRAGMA synchronous = NORMAL")
        try self.execute("PRAGMA foreign_keys = ON")
    }

    deinit {
        self.statementCache.removeAll()
        sqlite3_close_v2(self.handle)
    }

    /// Runs SQL text with no parameters (schema changes, pragmas).
    public func execute(_ sql: String) throws(SQLiteError) {
        let code = sqlite3_exec(self.handle, sql, nil, nil, nil)
        guard code == SQLITE_OK else { throw self.error(code: code, sql: sql) }
    }

    /// A prepared statement for `sql`, cached for the connection's lifetime.
    public func statement(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        if let cached = self.statementCache[sql] { return cached }
        let statement = try SQLiteStatement(connection: self, sql: sql)
        self.statementCache[sql] = statement
        return statement
    }

    /// Runs `body` inside `BEGIN IMMEDIATE … COMMIT`; any thrown error rolls everything back.
    public func transaction<Result>(_ body: () throws -> Result) throws -> Result {
        try self.execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try self.execute("COMMIT")
            return result
        } catch {
            try? self.execute("ROLLBACK")
            throw error
        }
    }

    public var changes: Int { Int(sqlite3_changes(self.handle)) }

    public var userVersion: Int {
        get throws {
            var version = 0
            try self.statement("PRAGMA user_version").forEachRow { version = Int($0.int64(0)) }
            return version
        }
    }

    func error(code: Int32, sql: String?) -> SQLiteError {
        SQLiteError(resultCode: code, message: String(cString: sqlite3_errmsg(self.handle)), sql: sql)
    }
}
