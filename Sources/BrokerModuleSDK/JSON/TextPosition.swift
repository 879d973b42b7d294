/// A 1-based line and column in a UTF-8 text, as editors and compilers print them (`7:15`).
/// The column counts characters (Unicode scalars), not bytes: `"é"` is one column.
public struct TextPosition: Sendable, Equatable, CustomStringConvertible {
    public let line: Int
    public let column: Int

    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }

    public var description: String { "\(self.line):\(self.column)" }
}

/// The starts of a text's lines, found once, so that many byte offsets (one per error) turn into
/// line and column without rescanning the text. A line ends after `\n` (so `\r\n` ends one line).
public struct TextLines: Sendable {
    private let bytes: [UInt8]
    /// Byte offset where each line starts; the first is 0.
    private let lineStarts: [Int]

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        var starts = [0]
        for (offset, byte) in bytes.enumerated() where byte == UInt8(ascii: "\n") {
            starts.append(offset + 1)
        }
        self.lineStarts = starts
    }

    /// The line and column of the character that starts at byte `offset` (clamped to the text;
    /// the end of the text is the column after its last character).
    public func position(ofOffset offset: Int) -> TextPosition {
        let offset = min(max(offset, 0), self.bytes.count)
        var low = 0
        var high = self.lineStarts.count - 1
        while low < high {
            let middle = (low + high + 1) / 2
            if self.lineStarts[middle] <= offset { low = middle } else { high = middle - 1 }
        }
        let lineStart = self.lineStarts[low]
        let characters = self.bytes[lineStart..<offset].reduce(0) { count, byte in
            byte & 0xC0 == 0x80 ? count : count + 1
        }
        return TextPosition(line: low + 1, column: characters + 1)
    }
}
