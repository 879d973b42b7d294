import CSQLite

/// A failed SQLite call. Carries SQLite's extended result code and message, and the SQL text that
/// failed; never the bound arguments, which may be sealed secrets.
public struct SQLiteError: Error, Sendable, CustomStringConvertible {
    public let resultCode: Int32
    public let message: String
    public let sql: String?

    public init(resultCode: Int32, message: String, sql: String? = nil) {
        self.resultCode = resultCode
        self.message = message
        self.sql = sql
    }

    /// The primary result code (`SQLITE_BUSY`, `SQLITE_FULL`, `SQLITE_CORRUPT`, …).
    public var primaryCode: Int32 { self.resultCode & 0xff }

    public var description: String {
        "SQLite error \(self.resultCode) (\(String(cString: sqlite3_errstr(self.resultCode)))): \(self.message)"
    }
}
