#if canImport(Glibc)
import Glibc
#endif
import BrokerCore

/// A closed-loop load generator over Unix sockets: each connection sends one request, waits for its
/// reply line, records the latency, and sends the next. One thread drives every connection with
/// `poll(2)`, so the generator itself stays cheap.
public struct LoadGenerator: Sendable {
    public struct Report: Sendable {
        public var requests: Int
        public var errors: Int
        public var seconds: Double
        /// Sorted latencies in microseconds.
        public var latencies: [UInt32]

        public var requestsPerSecond: Double { Double(self.requests) / self.seconds }

        public func percentile(_ fraction: Double) -> UInt32 {
            self.latencies.isEmpty ? 0 : self.latencies[Int(Double(self.latencies.count - 1) * fraction)]
        }
    }

    public let socketPath: String
    public let connections: Int
    public let seconds: Double
    /// Connection c sends line (c × 7919 + n) mod count as its n-th request: each walks the lines
    /// in order from its own starting point.
    public let requests: RequestLines
    /// Whether a reply line (without its `\n`) counts as a success.
    public let isSuccess: @Sendable (ArraySlice<UInt8>) -> Bool

    public init(
        socketPath: String,
        connections: Int,
        seconds: Double,
        requests: RequestLines,
        isSuccess: @escaping @Sendable (ArraySlice<UInt8>) -> Bool = LoadGenerator.hasResult
    ) {
        precondition(requests.count > 0, "a load needs at least one request line")
        self.socketPath = socketPath
        self.connections = connections
        self.seconds = seconds
        self.requests = requests
        self.isSuccess = isSuccess
    }

    private struct Connection {
        var descriptor: Int32
        /// The line this connection sends next.
        var next: Int
        var startedAt: UInt64 = 0
        var pending: [UInt8] = []
    }

    public func run() throws -> Report {
        var open: [Connection] = []
        defer { for connection in open { close(connection.descriptor) } }
        for _ in 0..<self.connections {
            let connection = try BrokerConnection(socketPath: self.socketPath, timeoutSeconds: 5)
            let descriptor = dup(connection.descriptorForLoad)
            _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
            open.append(Connection(descriptor: descriptor, next: (open.count &* 7919) % self.requests.count))
        }
        var polled = open.map { pollfd(fd: $0.descriptor, events: Int16(POLLIN), revents: 0) }
        var latencies: [UInt32] = []
        latencies.reserveCapacity(1 << 20)
        var errors = 0
        let start = Self.nanoseconds()
        let end = start + UInt64(self.seconds * 1e9)
        var line: [UInt8] = []
        for index in open.indices { errors += self.send(&open[index], line: &line) }
        var live = open.count
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while live > 0 {
            let ready = poll(&polled, nfds_t(polled.count), 5000)
            if ready < 0, errno == EINTR { continue }
            guard ready > 0 else { throw SystemCallError("no reply within 5 s", errno: ETIMEDOUT) }
            for index in polled.indices where polled[index].revents != 0 {
                polled[index].revents = 0
                let count = chunk.withUnsafeMutableBytes { read(open[index].descriptor, $0.baseAddress, $0.count) }
                if count < 0, errno == EAGAIN { continue }
                guard count > 0 else {
                    errors += 1
                    polled[index].fd = -1
                    live -= 1
                    continue
                }
                open[index].pending.append(contentsOf: chunk[0..<count])
                guard let newline = open[index].pending.firstIndex(of: 0x0a) else { continue }
                let now = Self.nanoseconds()
                if !self.isSuccess(open[index].pending[..<newline]) { errors += 1 }
                open[index].pending.removeSubrange(...newline)
                latencies.append(UInt32(min((now - open[index].startedAt) / 1000, UInt64(UInt32.max))))
                if now >= end {
                    polled[index].fd = -1
                    live -= 1
                } else {
                    errors += self.send(&open[index], line: &line)
                }
            }
        }
        let elapsed = Double(Self.nanoseconds() - start) / 1e9
        latencies.sort()
        return Report(requests: latencies.count, errors: errors, seconds: elapsed, latencies: latencies)
    }

    /// Sends the connection's next request, built in `line` (one buffer reused for every request).
    private func send(_ connection: inout Connection, line: inout [UInt8]) -> Int {
        self.requests.assemble(connection.next, into: &line)
        connection.next = connection.next + 1 == self.requests.count ? 0 : connection.next + 1
        connection.startedAt = Self.nanoseconds()
        let written = line.withUnsafeBytes { write(connection.descriptor, $0.baseAddress, $0.count) }
        return written == line.count ? 0 : 1
    }

    /// A reply with a `result` member.
    public static func hasResult(_ reply: ArraySlice<UInt8>) -> Bool {
        Self.range(of: #""result":"#, in: reply) != nil
    }

    /// A `token.get` reply with a result whose `expires_in` is positive: never a token past expiry.
    public static func isUnexpiredToken(_ reply: ArraySlice<UInt8>) -> Bool {
        guard Self.hasResult(reply), let marker = Self.range(of: #""expires_in":"#, in: reply) else { return false }
        let digits = reply[marker.upperBound...].prefix { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
        return !digits.isEmpty && digits.contains { $0 != UInt8(ascii: "0") }
    }

    private static func range(of literal: StaticString, in reply: ArraySlice<UInt8>) -> Range<Int>? {
        let marker = UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount)
        guard reply.count >= marker.count else { return nil }
        for start in reply.startIndex...(reply.endIndex - marker.count)
        where reply[start..<(start + marker.count)].elementsEqual(marker) {
            return start..<(start + marker.count)
        }
        return nil
    }

    static func nanoseconds() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }
}
