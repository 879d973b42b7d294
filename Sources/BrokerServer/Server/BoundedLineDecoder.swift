import NIOCore

/// What the line decoder hands the connection: a complete line, or notice that a line exceeded the cap.
public enum InboundLine: Sendable {
    case line(ByteBuffer)
    case tooLong
}

/// Splits the byte stream at `\n` (a trailing `\r` is dropped) and refuses lines longer than
/// `maximumLength` without buffering them whole: past the cap it emits `.tooLong` once and
/// discards everything after, since the connection is about to be closed.
final class BoundedLineDecoder: ByteToMessageDecoder {
    typealias InboundOut = InboundLine

    private let maximumLength: Int
    private var scannedBytes = 0
    private var overflowed = false

    init(maximumLength: Int) {
        self.maximumLength = maximumLength
    }

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if self.overflowed {
            buffer.moveReaderIndex(to: buffer.writerIndex)
            return .needMoreData
        }
        let view = buffer.readableBytesView
        let searchStart = view.startIndex + self.scannedBytes
        guard let newline = view[searchStart...].firstIndex(of: UInt8(ascii: "\n")) else {
            self.scannedBytes = view.count
            if view.count > self.maximumLength {
                self.overflowed = true
                buffer.moveReaderIndex(to: buffer.writerIndex)
                context.fireChannelRead(Self.wrapInboundOut(.tooLong))
            }
            return .needMoreData
        }
        self.scannedBytes = 0
        var length = newline - view.startIndex
        guard length <= self.maximumLength else {
            self.overflowed = true
            buffer.moveReaderIndex(to: buffer.writerIndex)
            context.fireChannelRead(Self.wrapInboundOut(.tooLong))
            return .needMoreData
        }
        if length > 0, view[newline - 1] == UInt8(ascii: "\r") { length -= 1 }
        let line = buffer.getSlice(at: buffer.readerIndex, length: length)!
        buffer.moveReaderIndex(forwardBy: newline - view.startIndex + 1)
        context.fireChannelRead(Self.wrapInboundOut(.line(line)))
        return .continue
    }

    func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try self.decode(context: context, buffer: &buffer) == .continue {}
        // An unterminated final fragment is not a message; drop it.
        buffer.moveReaderIndex(to: buffer.writerIndex)
        return .needMoreData
    }
}
