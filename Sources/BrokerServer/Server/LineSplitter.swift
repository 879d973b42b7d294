import NIOCore

/// Splits a byte stream into `\n`-terminated lines (a trailing `\r` is dropped), carrying a partial
/// line between reads, and refusing a line longer than `maximumLength` without buffering it whole.
struct LineSplitter {
    enum Outcome {
        case line(ByteBuffer)
        case needMoreData
        case tooLong
    }

    let maximumLength: Int
    private var carried: ByteBuffer?
    /// How much of `carried` is known to hold no newline, so it is not scanned again.
    private var scanned = 0

    init(maximumLength: Int) {
        self.maximumLength = maximumLength
    }

    /// Adds newly read bytes; then call `next()` until it returns `.needMoreData`.
    mutating func append(_ bytes: inout ByteBuffer) {
        if self.carried == nil {
            self.carried = bytes
        } else {
            self.carried!.writeBuffer(&bytes)
        }
    }

    mutating func next() -> Outcome {
        guard var buffer = self.carried else { return .needMoreData }
        let view = buffer.readableBytesView
        guard let newline = view[(view.startIndex + self.scanned)...].firstIndex(of: UInt8(ascii: "\n")) else {
            self.scanned = view.count
            if view.count > self.maximumLength { return .tooLong }
            if view.isEmpty { self.carried = nil }
            return .needMoreData
        }
        self.scanned = 0
        let length = newline - view.startIndex
        guard length <= self.maximumLength else { return .tooLong }
        let trimmed = length > 0 && view[newline - 1] == UInt8(ascii: "\r") ? length - 1 : length
        let line = buffer.getSlice(at: buffer.readerIndex, length: trimmed)!
        buffer.moveReaderIndex(forwardBy: length + 1)
        self.carried = buffer.readableBytes == 0 ? nil : buffer
        return .line(line)
    }
}
