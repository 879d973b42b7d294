/// Why a JSON text could not be parsed, with the byte offset where parsing stopped.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public let offset: Int
    public let reason: String

    public var description: String { "\(self.reason) at byte \(self.offset)" }
}

/// A strict RFC 8259 parser: rejects invalid UTF-8, control characters in strings, trailing bytes,
/// and nesting deeper than `maximumDepth` (so a hostile line cannot exhaust the stack).
public struct JSONParser {
    public static let maximumDepth = 64

    public static func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        let result = bytes.withUnsafeBytes { buffer in Result { () throws(JSONParseError) in try Self.parse(buffer) } }
        return try result.get()
    }

    public static func parse(_ buffer: UnsafeRawBufferPointer) throws(JSONParseError) -> JSONValue {
        try JSONScanner<NoSourceLocations>.parseDocument(buffer).value
    }

    /// Parses like `parse` and also returns where each value (and member name) starts, for messages
    /// that point into the text. Only callers that ask pay for the locations: `parse` records none.
    public static func parseWithLocations(_ bytes: [UInt8]) throws(JSONParseError) -> (value: JSONValue, locations: JSONSourceNode) {
        let result = bytes.withUnsafeBytes { buffer in
            Result { () throws(JSONParseError) in try JSONScanner<JSONSourceNode>.parseDocument(buffer) }
        }
        let (value, locations) = try result.get()
        return (value, locations)
    }
}

/// The parser's state over one text. `Locations` decides what is recorded besides the values:
/// `NoSourceLocations` records nothing (and is compiled away), `JSONSourceNode` records offsets.
struct JSONScanner<Locations: SourceLocationRecording> {
    static func parseDocument(_ buffer: UnsafeRawBufferPointer) throws(JSONParseError) -> (value: JSONValue, locations: Locations) {
        var parser = JSONScanner(buffer: buffer)
        parser.skipWhitespace()
        let parsed = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.index == buffer.count else { throw parser.failure("unexpected data after the JSON value") }
        return parsed
    }

    private let buffer: UnsafeRawBufferPointer
    private var index = 0

    private init(buffer: UnsafeRawBufferPointer) {
        self.buffer = buffer
    }

    private func failure(_ reason: String) -> JSONParseError {
        JSONParseError(offset: self.index, reason: reason)
    }

    private var current: UInt8? { self.index < self.buffer.count ? self.buffer[self.index] : nil }

    private mutating func skipWhitespace() {
        while let byte = self.current, byte == 0x20 || byte == 0x0a || byte == 0x0d || byte == 0x09 {
            self.index += 1
        }
    }

    private mutating func expect(_ literal: StaticString, value: JSONValue) throws(JSONParseError) -> JSONValue {
        let count = literal.utf8CodeUnitCount
        guard self.index + count <= self.buffer.count else { throw self.failure("invalid literal") }
        for offset in 0..<count where self.buffer[self.index + offset] != literal.utf8Start[offset] {
            throw self.failure("invalid literal")
        }
        self.index += count
        return value
    }

    private mutating func parseValue(depth: Int) throws(JSONParseError) -> (value: JSONValue, locations: Locations) {
        guard let byte = self.current else { throw self.failure("unexpected end of input") }
        let start = self.index
        switch byte {
        case UInt8(ascii: "{"): return try self.parseObject(depth: depth + 1)
        case UInt8(ascii: "["): return try self.parseArray(depth: depth + 1)
        case UInt8(ascii: "\""): return (.string(try self.parseString()), Locations.scalar(at: start))
        case UInt8(ascii: "t"): return (try self.expect("true", value: .bool(true)), Locations.scalar(at: start))
        case UInt8(ascii: "f"): return (try self.expect("false", value: .bool(false)), Locations.scalar(at: start))
        case UInt8(ascii: "n"): return (try self.expect("null", value: .null), Locations.scalar(at: start))
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return (try self.parseNumber(), Locations.scalar(at: start))
        default: throw self.failure("unexpected character")
        }
    }

    private mutating func parseObject(depth: Int) throws(JSONParseError) -> (value: JSONValue, locations: Locations) {
        guard depth <= JSONParser.maximumDepth else { throw self.failure("nesting deeper than \(JSONParser.maximumDepth)") }
        let start = self.index
        self.index += 1
        var members: [String: JSONValue] = [:]
        var memberLocations = Locations.noMembers
        self.skipWhitespace()
        if self.current == UInt8(ascii: "}") {
            self.index += 1
            return (.object(members), Locations.object(at: start, members: memberLocations))
        }
        while true {
            self.skipWhitespace()
            guard self.current == UInt8(ascii: "\"") else { throw self.failure("expected a member name") }
            let nameStart = self.index
            let key = try self.parseString()
            self.skipWhitespace()
            guard self.current == UInt8(ascii: ":") else { throw self.failure("expected ':'") }
            self.index += 1
            self.skipWhitespace()
            let member = try self.parseValue(depth: depth)
            members[key] = member.value
            Locations.add(member.locations, named: key, nameAt: nameStart, to: &memberLocations)
            self.skipWhitespace()
            switch self.current {
            case UInt8(ascii: ","): self.index += 1
            case UInt8(ascii: "}"):
                self.index += 1
                return (.object(members), Locations.object(at: start, members: memberLocations))
            default: throw self.failure("expected ',' or '}'")
            }
        }
    }

    private mutating func parseArray(depth: Int) throws(JSONParseError) -> (value: JSONValue, locations: Locations) {
        guard depth <= JSONParser.maximumDepth else { throw self.failure("nesting deeper than \(JSONParser.maximumDepth)") }
        let start = self.index
        self.index += 1
        var elements: [JSONValue] = []
        var elementLocations = Locations.noElements
        self.skipWhitespace()
        if self.current == UInt8(ascii: "]") {
            self.index += 1
            return (.array(elements), Locations.array(at: start, elements: elementLocations))
        }
        while true {
            self.skipWhitespace()
            let element = try self.parseValue(depth: depth)
            elements.append(element.value)
            Locations.add(element.locations, to: &elementLocations)
            self.skipWhitespace()
            switch self.current {
            case UInt8(ascii: ","): self.index += 1
            case UInt8(ascii: "]"):
                self.index += 1
                return (.array(elements), Locations.array(at: start, elements: elementLocations))
            default: throw self.failure("expected ',' or ']'")
            }
        }
    }

    private mutating func parseString() throws(JSONParseError) -> String {
        self.index += 1
        let start = self.index
        // Fast path: no escapes.
        while let byte = self.current, byte != UInt8(ascii: "\""), byte != UInt8(ascii: "\\") {
            guard byte >= 0x20 else { throw self.failure("control character in string") }
            self.index += 1
        }
        guard let stop = self.current else { throw self.failure("unterminated string") }
        if stop == UInt8(ascii: "\"") {
            let text = try self.validatedString(UnsafeRawBufferPointer(rebasing: self.buffer[start..<self.index]))
            self.index += 1
            return text
        }
        var bytes = Array(self.buffer[start..<self.index])
        while true {
            guard let byte = self.current else { throw self.failure("unterminated string") }
            self.index += 1
            switch byte {
            case UInt8(ascii: "\""):
                guard let text = String(validating: bytes, as: UTF8.self) else { throw self.failure("invalid UTF-8 in string") }
                return text
            case UInt8(ascii: "\\"):
                try self.appendEscape(to: &bytes)
            case 0..<0x20:
                throw self.failure("control character in string")
            default:
                bytes.append(byte)
            }
        }
    }

    private func validatedString(_ raw: UnsafeRawBufferPointer) throws(JSONParseError) -> String {
        guard let text = String(validating: raw, as: UTF8.self) else { throw self.failure("invalid UTF-8 in string") }
        return text
    }

    private mutating func appendEscape(to bytes: inout [UInt8]) throws(JSONParseError) {
        guard let escape = self.current else { throw self.failure("unterminated escape") }
        self.index += 1
        switch escape {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): bytes.append(escape)
        case UInt8(ascii: "b"): bytes.append(0x08)
        case UInt8(ascii: "f"): bytes.append(0x0c)
        case UInt8(ascii: "n"): bytes.append(0x0a)
        case UInt8(ascii: "r"): bytes.append(0x0d)
        case UInt8(ascii: "t"): bytes.append(0x09)
        case UInt8(ascii: "u"):
            var scalar = try self.parseHex4()
            if (0xD800..<0xDC00).contains(scalar) {
                guard self.current == UInt8(ascii: "\\"), self.index + 1 < self.buffer.count,
                    self.buffer[self.index + 1] == UInt8(ascii: "u")
                else { throw self.failure("unpaired surrogate") }
                self.index += 2
                let low = try self.parseHex4()
                guard (0xDC00..<0xE000).contains(low) else { throw self.failure("unpaired surrogate") }
                scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
            } else if (0xDC00..<0xE000).contains(scalar) {
                throw self.failure("unpaired surrogate")
            }
            guard let unicode = Unicode.Scalar(scalar) else { throw self.failure("invalid unicode escape") }
            bytes.append(contentsOf: Array(String(Character(unicode)).utf8))
        default:
            throw self.failure("invalid escape")
        }
    }

    private mutating func parseHex4() throws(JSONParseError) -> UInt32 {
        guard self.index + 4 <= self.buffer.count else { throw self.failure("truncated unicode escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = self.buffer[self.index]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw self.failure("invalid unicode escape")
            }
            value = value << 4 | digit
            self.index += 1
        }
        return value
    }

    private mutating func parseNumber() throws(JSONParseError) -> JSONValue {
        let start = self.index
        var isInteger = true
        if self.current == UInt8(ascii: "-") { self.index += 1 }
        guard let first = self.current, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else {
            throw self.failure("invalid number")
        }
        if first == UInt8(ascii: "0") {
            self.index += 1
        } else {
            self.skipDigits()
        }
        if self.current == UInt8(ascii: ".") {
            isInteger = false
            self.index += 1
            guard self.skipDigits() > 0 else { throw self.failure("invalid number") }
        }
        if self.current == UInt8(ascii: "e") || self.current == UInt8(ascii: "E") {
            isInteger = false
            self.index += 1
            if self.current == UInt8(ascii: "+") || self.current == UInt8(ascii: "-") { self.index += 1 }
            guard self.skipDigits() > 0 else { throw self.failure("invalid number") }
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: self.buffer[start..<self.index]), as: UTF8.self)
        if isInteger {
            if let integer = Int64(text) { return .integer(integer) }
            return .bigInteger(text)
        }
        guard let double = Double(text), double.isFinite else { throw self.failure("number out of range") }
        return .double(double)
    }

    @discardableResult
    private mutating func skipDigits() -> Int {
        let start = self.index
        while let byte = self.current, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) { self.index += 1 }
        return self.index - start
    }
}
