import CSQLite

/// A prepared statement. Owns its `sqlite3_stmt` and finalises it on release.
///
/// Values only ever reach SQLite through `bind`, never by building SQL text.
public final class SQLiteStatement {
    let handle: OpaquePointer
    let sql: String
    private unowned let connection: SQLiteConnection

    init(connection: SQLiteConnection, sql: String) throws(SQLiteError) {
        var handle: OpaquePointer?
        let code = sqlite3_prepare_v3(connection.handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &handle, nil)
        guard code == SQLITE_OK, let handle else { throw connection.error(code: code, sql: sql) }
        self.handle = handle
        self.sql = sql
        self.connection = connection
    }

    deinit { sqlite3_finalize(self.handle) }

    /// Resets the statement and binds `values` to its parameters, in order.
    public func bind(_ values: [SQLiteValue]) throws(SQLiteError) {
        sqlite3_reset(self.handle)
        sqlite3_clear_bindings(self.handle)
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            let code: Int32
            switch value {
            case .integer(let number):
                code = sqlite3_bind_int64(self.handle, index, number)
            case .text(var text):
                // Bound with its byte count, not as a C string: a NUL inside must not cut the value
                // short (a lookup of "t1\0x" would otherwise find tenant "t1").
                code = text.withUTF8 {
                    sqlite3_bind_text64(
                        self.handle, index, Self.address(of: UnsafeRawBufferPointer($0)).assumingMemoryBound(to: CChar.self),
                        UInt64($0.count), SQLITE_TRANSIENT, UInt8(SQLITE_UTF8)
                    )
                }
            case .blob(let bytes):
                code = bytes.withUnsafeBytes {
                    sqlite3_bind_blob64(self.handle, index, Self.address(of: $0), UInt64($0.count), SQLITE_TRANSIENT)
                }
            case .null:
                code = sqlite3_bind_null(self.handle, index)
            }
            guard code == SQLITE_OK else { throw self.connection.error(code: code, sql: self.sql) }
        }
    }

    /// A non-null address for a possibly empty buffer: SQLite binds NULL, not an empty value, for a null pointer.
    private static func address(of buffer: UnsafeRawBufferPointer) -> UnsafeRawPointer {
        buffer.baseAddress ?? UnsafeRawPointer(Self.empty.utf8Start)
    }

    private static let empty: StaticString = ""

    /// Advances to the next row; false when the statement is done.
    public func step() throws(SQLiteError) -> Bool {
        let code = sqlite3_step(self.handle)
        switch code {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default:
            sqlite3_reset(self.handle)
            throw self.connection.error(code: code, sql: self.sql)
        }
    }

    /// Binds, runs to completion and resets: for statements that return no rows.
    public func run(_ values: [SQLiteValue] = []) throws(SQLiteError) {
        try self.bind(values)
        while try self.step() {}
        sqlite3_reset(self.handle)
    }

    /// Binds, then calls `row` for each result row.
    public func forEachRow(_ values: [SQLiteValue] = [], _ row: (SQLiteRow) throws -> Void) throws {
        try self.bind(values)
        defer { sqlite3_reset(self.handle) }
        while try self.step() {
            try row(SQLiteRow(handle: self.handle))
        }
    }
}

/// Column access for the current row of a statement; valid only inside `forEachRow`.
public struct SQLiteRow {
    let handle: OpaquePointer

    public func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(self.handle, column) }

    public func isNull(_ column: Int32) -> Bool { sqlite3_column_type(self.handle, column) == SQLITE_NULL }

    public func text(_ column: Int32) -> String {
        guard let pointer = sqlite3_column_text(self.handle, column) else { return "" }
        let count = Int(sqlite3_column_bytes(self.handle, column))
        return String(decoding: UnsafeBufferPointer(start: pointer, count: count), as: UTF8.self)
    }

    public func optionalText(_ column: Int32) -> String? {
        self.isNull(column) ? nil : self.text(column)
    }

    public func blob(_ column: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(self.handle, column))
        guard count > 0, let pointer = sqlite3_column_blob(self.handle, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }
}

/// SQLite copies bound values immediately when given this destructor.
let SQLITE_TRANSIENT = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
