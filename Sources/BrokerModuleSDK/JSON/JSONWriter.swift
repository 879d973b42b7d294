/// Serialises `JSONValue`s: compact for the wire, indented for people. Object keys are sorted so
/// output is deterministic.
public enum JSONWriter {
    public static func bytes(_ value: JSONValue) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(128)
        Self.write(value, into: &output, indent: nil)
        return output
    }

    public static func string(_ value: JSONValue) -> String {
        String(decoding: Self.bytes(value), as: UTF8.self)
    }

    public static func prettyString(_ value: JSONValue) -> String {
        var output: [UInt8] = []
        Self.write(value, into: &output, indent: 0)
        return String(decoding: output, as: UTF8.self)
    }

    public static func write(_ value: JSONValue, into output: inout [UInt8], indent: Int?) {
        switch value {
        case .null: output.append(contentsOf: "null".utf8)
        case .bool(let flag): output.append(contentsOf: (flag ? "true" : "false").utf8)
        case .integer(let number): output.append(contentsOf: String(number).utf8)
        case .double(let number):
            if number.isFinite {
                output.append(contentsOf: (number.rounded() == number && abs(number) < 1e15 ? String(Int64(number)) : "\(number)").utf8)
            } else {
                output.append(contentsOf: "null".utf8)
            }
        case .bigInteger(let digits): output.append(contentsOf: digits.utf8)
        case .string(let text): Self.writeString(text, into: &output)
        case .array(let elements):
            Self.writeContainer(open: "[", close: "]", count: elements.count, into: &output, indent: indent) { index, output, inner in
                Self.write(elements[index], into: &output, indent: inner)
            }
        case .object(let members):
            let keys = members.keys.sorted()
            Self.writeContainer(open: "{", close: "}", count: keys.count, into: &output, indent: indent) { index, output, inner in
                Self.writeString(keys[index], into: &output)
                output.append(contentsOf: (inner == nil ? ":" : ": ").utf8)
                Self.write(members[keys[index]]!, into: &output, indent: inner)
            }
        }
    }

    private static func writeContainer(
        open: Unicode.Scalar,
        close: Unicode.Scalar,
        count: Int,
        into output: inout [UInt8],
        indent: Int?,
        element: (Int, inout [UInt8], Int?) -> Void
    ) {
        output.append(UInt8(ascii: open))
        let inner = indent.map { $0 + 2 }
        for index in 0..<count {
            if index > 0 { output.append(UInt8(ascii: ",")) }
            if let inner { Self.newline(into: &output, indent: inner) }
            element(index, &output, inner)
        }
        if let indent, count > 0 { Self.newline(into: &output, indent: indent) }
        output.append(UInt8(ascii: close))
    }

    private static func newline(into output: inout [UInt8], indent: Int) {
        output.append(0x0a)
        output.append(contentsOf: repeatElement(UInt8(ascii: " "), count: indent))
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// `text` as a JSON string literal: quoted, escaped, always one line (for messages naming a value).
    public static func quoted(_ text: String) -> String {
        var bytes: [UInt8] = []
        Self.writeString(text, into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    public static func writeString(_ text: String, into output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0a: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0d: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: output.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20:
                output.append(contentsOf: Array("\\u00".utf8))
                output.append(Self.hexDigits[Int(byte >> 4)])
                output.append(Self.hexDigits[Int(byte & 0x0f)])
            default: output.append(byte)
            }
        }
        output.append(UInt8(ascii: "\""))
    }
}
