#if canImport(Glibc)
import Glibc
#endif

/// Splits a byte stream into `\n`-terminated lines (a trailing `\r` is dropped), carrying a partial
/// line between reads, and refusing a line longer than `maximumLength` without buffering it whole.
///
/// Lines that arrive whole within one read are handed out as views of the read buffer, uncopied;
/// only a line split across reads, or lines left over when the taker paused, are kept in `carried`.
/// A taker that cannot accept more (its queue is full) returns false: the splitter stops there and
/// keeps the rest, so a connection's backlog of requests waits in one bounded place.
struct LineSplitter {
    enum Outcome: Equatable {
        /// Every complete line was taken; at most a partial line is kept.
        case consumed
        /// The taker asked to stop; the lines after the last one taken are kept for `resume`.
        case paused
        /// A line is longer than `maximumLength`: the lines before it were taken, and the stream is unusable.
        case overLong
    }

    let maximumLength: Int
    private var carried: [UInt8] = []
    /// True when `carried` may hold complete lines the taker has not had yet.
    private(set) var isPaused = false

    init(maximumLength: Int) {
        self.maximumLength = maximumLength
    }

    /// Bytes held: lines not yet taken and a partial line.
    var heldBytes: Int { self.carried.count }

    /// True when bytes of a line whose end has not arrived are held.
    var holdsPartialLine: Bool { !self.isPaused && !self.carried.isEmpty }

    /// Hands `take` every line that `bytes` completes, in order, until it returns false.
    mutating func split(_ bytes: UnsafeRawBufferPointer, _ take: (UnsafeRawBufferPointer) -> Bool) -> Outcome {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return .consumed }
        if self.isPaused {
            self.carried.append(contentsOf: bytes)
            return self.resume(take)
        }
        var start = 0
        if !self.carried.isEmpty {
            guard let newline = Self.newline(in: base, from: 0, to: bytes.count) else {
                guard self.carried.count + bytes.count <= self.maximumLength else { return .overLong }
                self.carried.append(contentsOf: bytes)
                return .consumed
            }
            guard self.carried.count + newline <= self.maximumLength else { return .overLong }
            self.carried.append(contentsOf: UnsafeRawBufferPointer(start: base, count: newline))
            let goOn = self.carried.withUnsafeBytes { take(Self.trimmingReturn($0)) }
            self.carried.removeAll(keepingCapacity: self.carried.capacity <= 4096)
            start = newline + 1
            if !goOn { return self.keep(UnsafeRawBufferPointer(rebasing: bytes[start...])) }
        }
        while start < bytes.count {
            guard let newline = Self.newline(in: base, from: start, to: bytes.count) else {
                guard bytes.count - start <= self.maximumLength else { return .overLong }
                self.carried.append(contentsOf: UnsafeRawBufferPointer(start: base + start, count: bytes.count - start))
                return .consumed
            }
            guard newline - start <= self.maximumLength else { return .overLong }
            let goOn = take(Self.trimmingReturn(UnsafeRawBufferPointer(start: base + start, count: newline - start)))
            start = newline + 1
            if !goOn { return self.keep(UnsafeRawBufferPointer(rebasing: bytes[start...])) }
        }
        return .consumed
    }

    /// After a pause, hands `take` the kept lines until it returns false again or none is left.
    mutating func resume(_ take: (UnsafeRawBufferPointer) -> Bool) -> Outcome {
        guard self.isPaused else { return .consumed }
        var consumed = 0
        var outcome = Outcome.consumed
        self.carried.withUnsafeBytes { bytes in
            let base = bytes.baseAddress!
            while consumed < bytes.count {
                guard let newline = Self.newline(in: base, from: consumed, to: bytes.count) else {
                    if bytes.count - consumed > self.maximumLength { outcome = .overLong }
                    return
                }
                guard newline - consumed <= self.maximumLength else {
                    outcome = .overLong
                    return
                }
                let goOn = take(Self.trimmingReturn(UnsafeRawBufferPointer(start: base + consumed, count: newline - consumed)))
                consumed = newline + 1
                if !goOn {
                    outcome = .paused
                    return
                }
            }
        }
        self.carried.removeFirst(consumed)
        self.isPaused = outcome == .paused && !self.carried.isEmpty
        return self.isPaused ? .paused : outcome
    }

    /// Drops everything held (the connection is closing).
    mutating func discard() {
        self.carried = []
        self.isPaused = false
    }

    private mutating func keep(_ rest: UnsafeRawBufferPointer) -> Outcome {
        guard !rest.isEmpty else { return .consumed }
        self.carried.append(contentsOf: rest)
        self.isPaused = true
        return .paused
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
