/// A value of the TOML subset the config file is written in.
public enum ConfigValue: Sendable, Equatable {
    case string(String)
    case integer(Int)
    case float(Double)
    case boolean(Bool)
    case array([ConfigValue])

    var typeName: String {
        switch self {
        case .string: "a string"
        case .integer: "an integer"
        case .float: "a number"
        case .boolean: "a boolean"
        case .array: "an array"
        }
    }
}

/// One `key = value` line of the file, with the table it is in and where it starts.
public struct ConfigEntry: Sendable, Equatable {
    /// The `[table]` the key is under; nil at the top.
    public let table: String?
    public let key: String
    public let value: ConfigValue
    public let line: Int
    public let column: Int
}

/// Why the file is not the TOML the broker reads, at a 1-based line and column. Never quotes a value.
public struct ConfigSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    public let line: Int
    public let column: Int
    public let message: String

    public var description: String { "\(self.line):\(self.column): \(self.message)" }
}

/// Reads the part of TOML a flat settings file needs: comments, `[table]` headers, bare or quoted keys,
/// basic and literal strings, integers, floats, booleans and arrays of those (across lines, trailing comma
/// allowed). Anything else TOML has (dotted keys, inline tables, dates, multi-line strings, arrays of
/// tables) is refused by name, so a file never means something the broker did not read.
///
/// Hand-written because the file has a dozen keys and the alternatives are a C++ dependency; it is fuzzed
/// by the tests, not trusted.
public struct ConfigTOML {
    private let bytes: [UInt8]
    private var offset = 0
    private var line = 1
    private var lineStart = 0

    public static let maximumSize = 1 << 20

    public static func parse(_ bytes: [UInt8]) throws(ConfigSyntaxError) -> [ConfigEntry] {
        guard bytes.count <= Self.maximumSize else {
            throw ConfigSyntaxError(line: 1, column: 1, message: "file is larger than 1 MiB")
        }
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw ConfigSyntaxError(line: 1, column: 1, message: "file is not UTF-8")
        }
        var reader = ConfigTOML(bytes: bytes)
        return try reader.document()
    }

    private init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    private var column: Int {
        // Characters, not bytes: UTF-8 continuation bytes do not start a column.
        1 + self.bytes[self.lineStart..<self.offset].count { $0 & 0xC0 != 0x80 }
    }

    private var current: UInt8? { self.offset < self.bytes.count ? self.bytes[self.offset] : nil }

    private func failure(_ message: String) -> ConfigSyntaxError {
        ConfigSyntaxError(line: self.line, column: self.column, message: message)
    }

    private mutating func document() throws(ConfigSyntaxError) -> [ConfigEntry] {
        var entries: [ConfigEntry] = []
        var table: String?
        var seenKeys = Set<String>()
        var seenTables = Set<String>()
        while true {
            self.skipBlanks()
            guard let byte = self.current else { return entries }
            switch byte {
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "#"):
                try self.endOfLine()
            case UInt8(ascii: "["):
                self.offset += 1
                guard self.current != UInt8(ascii: "[") else { throw self.failure("arrays of tables ([[…]]) are not supported") }
                self.skipBlanks()
                let (line, column) = (self.line, self.column)
                let name = try self.key()
                self.skipBlanks()
                guard self.current == UInt8(ascii: "]") else { throw self.failure("expected ] after the table name") }
                self.offset += 1
                guard seenTables.insert(name).inserted, !seenKeys.contains(name) else {
                    throw ConfigSyntaxError(line: line, column: column, message: "table [\(name)] is defined twice")
                }
                table = name
                try self.endOfLine()
            default:
                let (line, column) = (self.line, self.column)
                let key = try self.key()
                self.skipBlanks()
                guard self.current == UInt8(ascii: "=") else {
                    throw self.failure(self.current == UInt8(ascii: ".") ? "dotted keys are not supported; use a [table]" : "expected = after the key")
                }
                self.offset += 1
                self.skipBlanks()
                let value = try self.value()
                let qualified = table.map { "\($0).\(key)" } ?? key
                guard seenKeys.insert(qualified).inserted else {
                    throw ConfigSyntaxError(line: line, column: column, message: "key \(qualified) is given twice")
                }
                entries.append(ConfigEntry(table: table, key: key, value: value, line: line, column: column))
                try self.endOfLine()
            }
        }
    }

    private mutating func skipBlanks() {
        while let byte = self.current, byte == 0x20 || byte == 0x09 { self.offset += 1 }
    }

    /// Blanks, an optional comment, then a newline or the end of the file.
    private mutating func endOfLine() throws(ConfigSyntaxError) {
        self.skipBlanks()
        if self.current == UInt8(ascii: "#") {
            while let byte = self.current, byte != 0x0A {
                guard byte == 0x09 || byte >= 0x20 || byte == 0x0D, byte != 0x7F else { throw self.failure("control character in a comment") }
                if byte == 0x0D { break }
                self.offset += 1
            }
        }
        switch self.current {
        case nil:
            return
        case 0x0D where self.offset + 1 < self.bytes.count && self.bytes[self.offset + 1] == 0x0A:
            self.offset += 2
        case 0x0A:
            self.offset += 1
        default:
            throw self.failure("expected the end of the line")
        }
        self.line += 1
        self.lineStart = self.offset
    }

    private mutating func key() throws(ConfigSyntaxError) -> String {
        if self.current == UInt8(ascii: "\"") {
            return try self.basicString()
        }
        let start = self.offset
        while let byte = self.current, Self.isBareKeyByte(byte) { self.offset += 1 }
        guard self.offset > start else { throw self.failure("expected a key") }
        return String(decoding: self.bytes[start..<self.offset], as: UTF8.self)
    }

    private static func isBareKeyByte(_ byte: UInt8) -> Bool {
        (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x30 && byte <= 0x39) || byte == 0x2D || byte == 0x5F
    }

    private mutating func value() throws(ConfigSyntaxError) -> ConfigValue {
        switch self.current {
        case UInt8(ascii: "\""):
            return .string(try self.basicString())
        case UInt8(ascii: "'"):
            return .string(try self.literalString())
        case UInt8(ascii: "["):
            return try self.array()
        case UInt8(ascii: "{"):
            throw self.failure("inline tables are not supported; use a [table]")
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            return try self.boolean()
        case .some:
            return try self.number()
        case nil:
            throw self.failure("expected a value")
        }
    }

    private mutating func basicString() throws(ConfigSyntaxError) -> String {
        if self.bytes[self.offset...].starts(with: Array("\"\"\"".utf8)) {
            throw self.failure("multi-line strings are not supported")
        }
        self.offset += 1
        var text: [UInt8] = []
        while true {
            guard let byte = self.current, byte != 0x0A else { throw self.failure("string is not closed on its line") }
            self.offset += 1
            switch byte {
            case UInt8(ascii: "\""):
                return String(decoding: text, as: UTF8.self)
            case UInt8(ascii: "\\"):
                try self.escape(into: &text)
            case 0x09, 0x20...0x7E, 0x80...:
                text.append(byte)
            default:
                throw self.failure("control character in a string")
            }
        }
    }

    private mutating func escape(into text: inout [UInt8]) throws(ConfigSyntaxError) {
        guard let byte = self.current else { throw self.failure("string is not closed on its line") }
        self.offset += 1
        switch byte {
        case UInt8(ascii: "\""): text.append(0x22)
        case UInt8(ascii: "\\"): text.append(0x5C)
        case UInt8(ascii: "n"): text.append(0x0A)
        case UInt8(ascii: "t"): text.append(0x09)
        case UInt8(ascii: "r"): text.append(0x0D)
        case UInt8(ascii: "b"): text.append(0x08)
        case UInt8(ascii: "f"): text.append(0x0C)
        case UInt8(ascii: "u"), UInt8(ascii: "U"):
            let digits = byte == UInt8(ascii: "u") ? 4 : 8
            guard self.offset + digits <= self.bytes.count,
                let value = UInt32(String(decoding: self.bytes[self.offset..<self.offset + digits], as: UTF8.self), radix: 16),
                let scalar = Unicode.Scalar(value)
            else {
                self.offset -= 2
                throw self.failure("bad \\u escape")
            }
            self.offset += digits
            text.append(contentsOf: Array(String(Character(scalar)).utf8))
        default:
            self.offset -= 2
            throw self.failure("unknown escape in a string")
        }
    }

    private mutating func literalString() throws(ConfigSyntaxError) -> String {
        if self.bytes[self.offset...].starts(with: Array("'''".utf8)) {
            throw self.failure("multi-line strings are not supported")
        }
        self.offset += 1
        let start = self.offset
        while true {
            guard let byte = self.current, byte != 0x0A else { throw self.failure("string is not closed on its line") }
            guard byte == 0x09 || byte >= 0x20, byte != 0x7F else { throw self.failure("control character in a string") }
            self.offset += 1
            if byte == UInt8(ascii: "'") {
                return String(decoding: self.bytes[start..<self.offset - 1], as: UTF8.self)
            }
        }
    }

    private mutating func array() throws(ConfigSyntaxError) -> ConfigValue {
        self.offset += 1
        var elements: [ConfigValue] = []
        while true {
            try self.skipBlanksNewlinesAndComments()
            if self.current == UInt8(ascii: "]") {
                self.offset += 1
                return .array(elements)
            }
            elements.append(try self.value())
            try self.skipBlanksNewlinesAndComments()
            switch self.current {
            case UInt8(ascii: ","):
                self.offset += 1
            case UInt8(ascii: "]"):
                self.offset += 1
                return .array(elements)
            default:
                throw self.failure("expected , or ] in the array")
            }
        }
    }

    private mutating func skipBlanksNewlinesAndComments() throws(ConfigSyntaxError) {
        while true {
            self.skipBlanks()
            guard let byte = self.current, byte == 0x0A || byte == 0x0D || byte == UInt8(ascii: "#") else { return }
            try self.endOfLine()
        }
    }

    private mutating func boolean() throws(ConfigSyntaxError) -> ConfigValue {
        for (word, value) in [("true", true), ("false", false)] where self.bytes[self.offset...].starts(with: Array(word.utf8)) {
            let end = self.offset + word.utf8.count
            if end == self.bytes.count || !Self.isBareKeyByte(self.bytes[end]) {
                self.offset = end
                return .boolean(value)
            }
        }
        throw self.failure("expected a value (strings are quoted)")
    }

    /// Decimal integers and floats, with `_` between digits; hex, octal, binary, inf, nan and dates are refused.
    private mutating func number() throws(ConfigSyntaxError) -> ConfigValue {
        let start = self.offset
        while let byte = self.current, (byte >= 0x30 && byte <= 0x39) || "+-_.eE".utf8.contains(byte) { self.offset += 1 }
        let text = String(decoding: self.bytes[start..<self.offset], as: UTF8.self)
        let signInside = text.dropFirst().enumerated().contains { index, character in
            (character == "-" || character == "+") && !"eE".contains(text[text.index(text.startIndex, offsetBy: index)])
        }
        if signInside || self.current.map({ Self.isBareKeyByte($0) || $0 == UInt8(ascii: ":") }) == true {
            self.offset = start
            throw self.failure("expected a value (strings are quoted; dates, hex and other forms are not supported)")
        }
        let digitsOnly = text.replacingUnderscoresBetweenDigits()
        guard let digitsOnly, !text.isEmpty else {
            self.offset = start
            throw self.failure("expected a value (strings are quoted)")
        }
        let unsigned = digitsOnly.first == "+" || digitsOnly.first == "-" ? digitsOnly.dropFirst() : Substring(digitsOnly)
        guard unsigned.first?.isASCIIDigit == true, !(unsigned.count > 1 && unsigned.first == "0" && unsigned.dropFirst().first?.isASCIIDigit == true) else {
            self.offset = start
            throw self.failure("not a decimal number")
        }
        if let integer = Int(digitsOnly) { return .integer(integer) }
        if digitsOnly.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }), let float = Double(digitsOnly), float.isFinite {
            return .float(float)
        }
        self.offset = start
        throw self.failure("not a number the broker can hold")
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { self >= "0" && self <= "9" }
}

extension String {
    /// The text without TOML's digit separators, or nil when an underscore is not between two digits.
    fileprivate func replacingUnderscoresBetweenDigits() -> String? {
        let characters = Array(self)
        var result = ""
        for (index, character) in characters.enumerated() {
            guard character == "_" else {
                result.append(character)
                continue
            }
            guard index > 0, index + 1 < characters.count, characters[index - 1].isASCIIDigit, characters[index + 1].isASCIIDigit else { return nil }
        }
        return result
    }
}
