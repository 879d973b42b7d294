#if canImport(Glibc)
import Glibc
#endif
import BrokerCore
import Logging
import NIOPosix
import ServiceLifecycle
import Synchronization

/// `<home>/audit.log`: one JSON object per line (time, peer uid/gid/pid, method, tenant, region,
/// outcome, code, count), mode 0600, rotated by size. Never a token, a key or a sign.
///
/// Recording only appends to a memory buffer under a lock; the `run()` service writes it out every
/// second on a thread pool, so no request waits on the disk. Successful `token.get`s served by the
/// socket loops' fast path arrive as counts per token slot from each connection and are merged per
/// caller (uid, gid, pid) and slot into one line with a `count` per `servedInterval`: sixty-four
/// connections of one process over a thousand tenants make a thousand lines a minute, not
/// sixty-four thousand.
public final class AuditLog: Service, Sendable {
    public enum Outcome: String, Sendable {
        case ok
        case error
        case denied
    }

    public let path: String
    public let maximumBytes: Int
    public let keptFiles: Int
    /// Lines beyond this much unwritten output are dropped (and counted) rather than grow memory.
    static let maximumPending = 8 << 20

    /// How often merged fast-path counts become lines (and at shutdown).
    public static let servedInterval = 60.0

    private struct Pending {
        var bytes: [UInt8] = []
        var dropped = 0
        /// Connections' counts as handed over, merged by the writer (not under this lock).
        var tallies: [(peer: PeerCredentials, counts: ServedTally)] = []

        /// Lines beyond `maximumPending` unwritten bytes are counted, not kept.
        mutating func append(_ line: [UInt8]) {
            guard self.bytes.count + line.count <= AuditLog.maximumPending else {
                self.dropped += 1
                return
            }
            self.bytes.append(contentsOf: line)
        }
    }

    private let pending = Mutex(Pending())
    /// Fast-path counts merged so far, written every `servedInterval`. Only the writer takes this lock.
    private let served = Mutex([PeerCredentials: [TokenSlot: Int]]())
    /// Names a slot's tenant and region when its count is written (`TokenCache.key(of:)`).
    private let slotKeys: @Sendable (TokenSlot) -> TokenKey?
    private let logger: Logger

    public init(
        path: String,
        maximumBytes: Int = 16 << 20,
        keptFiles: Int = 3,
        slotKeys: @escaping @Sendable (TokenSlot) -> TokenKey?,
        logger: Logger
    ) {
        self.path = path
        self.slotKeys = slotKeys
        self.maximumBytes = maximumBytes
        self.keptFiles = keptFiles
        self.logger = logger
    }

    public func record(
        peer: PeerCredentials,
        method: String,
        tenant: String?,
        region: String?,
        outcome: Outcome,
        code: Int? = nil,
        count: Int = 1,
        now: Double = SystemClock().unixNow()
    ) {
        let line = Self.line(peer: peer, method: method, tenant: tenant, region: region, outcome: outcome, code: code, count: count, now: now)
        self.pending.withLock { $0.append(line) }
    }

    private static func line(
        peer: PeerCredentials,
        method: String,
        tenant: String?,
        region: String?,
        outcome: Outcome,
        code: Int?,
        count: Int,
        now: Double
    ) -> [UInt8] {
        var object: [String: JSONValue] = [
            "time": .double((now * 1000).rounded() / 1000),
            "uid": .integer(Int64(peer.uid)),
            "gid": .integer(Int64(peer.gid)),
            "pid": .integer(Int64(peer.pid)),
            "method": .string(method),
            "outcome": .string(outcome.rawValue),
        ]
        if let tenant { object["tenant"] = .string(tenant) }
        if let region { object["region"] = .string(region) }
        if let code { object["code"] = .integer(Int64(code)) }
        if count != 1 { object["count"] = .integer(Int64(count)) }
        var line = JSONWriter.bytes(.object(object))
        line.append(0x0a)
        return line
    }

    /// Adds a connection's fast-path successes since it last reported.
    /// Called on socket loops: an append under the lock; the merging happens in `flush`.
    public func recordServed(peer: PeerCredentials, counts: ServedTally) {
        self.pending.withLock { $0.tallies.append((peer, counts)) }
    }

    /// Writes buffered lines every second, and merged fast-path counts every `servedInterval`, until
    /// shutdown; then both once more.
    public func run() async throws {
        var servedAt = ContinuousClock.now
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: .seconds(1))
            let servedDue = ContinuousClock.now - servedAt >= .seconds(Self.servedInterval)
            if servedDue { servedAt = ContinuousClock.now }
            await self.flush(includingServed: servedDue)
        }
        await self.flush(includingServed: true)
    }

    /// Writes what is buffered now, and with `includingServed` the merged fast-path counts too.
    public func flush(includingServed: Bool = true) async {
        let (bytes, dropped, tallies) = self.pending.withLock { pending in
            defer { pending = Pending() }
            return (pending.bytes, pending.dropped, pending.tallies)
        }
        let served = self.served.withLock { merged in
            for tally in tallies {
                // Taken out while merging, so adding to it never copies it.
                var counts = merged.removeValue(forKey: tally.peer) ?? [:]
                for run in tally.counts.runs {
                    counts[run.slot, default: 0] += run.count
                }
                merged[tally.peer] = counts
            }
            guard includingServed else { return [PeerCredentials: [TokenSlot: Int]]() }
            defer { merged = [:] }
            return merged
        }
        if dropped > 0 { self.logger.warning("audit lines dropped: the disk is not keeping up", metadata: ["count": "\(dropped)"]) }
        await self.writeOut(bytes)
        // Merged counts can be a line per tenant: written in pieces, never all held at once.
        let now = SystemClock().unixNow()
        var piece: [UInt8] = []
        for (peer, counts) in served {
            for (slot, count) in counts {
                guard let key = self.slotKeys(slot) else { continue }
                piece += Self.line(
                    peer: peer, method: "token.get", tenant: key.tenant, region: key.region, outcome: .ok, code: nil, count: count, now: now
                )
                if piece.count >= Self.writePiece {
                    await self.writeOut(piece)
                    piece.removeAll(keepingCapacity: true)
                }
            }
        }
        await self.writeOut(piece)
    }

    /// How many bytes of merged-count lines are written at a time.
    static let writePiece = 256 << 10

    private func writeOut(_ bytes: [UInt8]) async {
        guard !bytes.isEmpty else { return }
        do {
            try await NIOThreadPool.singleton.runIfActive { try self.append(bytes) }
        } catch {
            self.logger.error("cannot write the audit log", metadata: ["path": "\(self.path)", "error": "\(error)"])
        }
    }

    private func append(_ bytes: [UInt8]) throws {
        var info = stat()
        if stat(self.path, &info) == 0, Int(info.st_size) + bytes.count > self.maximumBytes {
            self.rotate()
        }
        let fd = open(self.path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw SystemCallError("open \(self.path)") }
        defer { close(fd) }
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { throw SystemCallError("write \(self.path)") }
            written += count
        }
    }

    /// audit.log → audit.log.1 → … → audit.log.N (the oldest is dropped).
    private func rotate() {
        unlink("\(self.path).\(self.keptFiles)")
        for index in stride(from: self.keptFiles - 1, through: 1, by: -1) {
            rename("\(self.path).\(index)", "\(self.path).\(index + 1)")
        }
        rename(self.path, "\(self.path).1")
    }
}
