#if canImport(Glibc)
import Glibc
#endif

/// Splits a byte stream into `\n`-terminated lines (a trailing `\r` is dropped), carrying a partial
/// line between reads, and refusing a line longer than `maximumLength` without buffering it whole.
///
/// Lines that arrive whole within one read are handed out as views of the read buffer, uncopied;
/// only a line split across reads is gathered in `carried`.
struct LineSplitter {
    let maximumLength: Int
    private var carried: [UInt8] = []

    init(maximumLength: Int) {
        self.maximumLength = maximumLength
    }

    /// Calls `line` for every line that `bytes` completes, in order. Returns false, having handed
    /// out the lines before it, when a line is longer than `maximumLength`; the stream is then unusable.
    mutating func split(_ bytes: UnsafeRawBufferPointer, _ line: (UnsafeRawBufferPointer) -> Void) -> Bool {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return true }
        var start = 0
        if !self.carried.isEmpty {
            guard let newline = Self.newline(in: base, from: 0, to: bytes.count) else {
                guard self.carried.count + bytes.count <= self.maximumLength else { return false }
                self.carried.append(contentsOf: bytes)
                return true
            }
            guard self.carried.count + newline <= self.maximumLength else { return false }
            self.carried.append(contentsOf: UnsafeRawBufferPointer(start: base, count: newline))
            self.carried.withUnsafeBytes { line(Self.trimmingReturn($0)) }
            self.carried.removeAll(keepingCapacity: self.carried.capacity <= 4096)
            start = newline + 1
        }
        while start < bytes.count {
            guard let newline = Self.newline(in: base, from: start, to: bytes.count) else {
                guard bytes.count - start <= self.maximumLength else { return false }
                self.carried.append(contentsOf: UnsafeRawBufferPointer(start: base + start, count: bytes.count - start))
                return true
            }
            guard newline - start <= self.maximumLength else { return false }
            line(Self.trimmingReturn(UnsafeRawBufferPointer(start: base + start, count: newline - start)))
            start = newline + 1
        }
        return true
    }

    private static func newline(in base: UnsafeRawPointer, from start: Int, to end: Int) -> Int? {
        guard let found = memchr(base + start, Int32(UInt8(ascii: "\n")), end - start) else { return nil }
        return UnsafeRawPointer(found) - base
    }

    private static func trimmingReturn(_ line: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        guard let last = line.last, last == UInt8(ascii: "\r") else { return line }
        return UnsafeRawBufferPointer(rebasing: line.dropLast())
    }
}
