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
/// event-loop fast path arrive aggregated (one line per connection, tenant and region, with a count).
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

    private struct Pending {
        var bytes: [UInt8] = []
        var dropped = 0
    }

    private let pending = Mutex(Pending())
    private let logger: Logger

    public init(path: String, maximumBytes: Int = 16 << 20, keptFiles: Int = 3, logger: Logger) {
        self.path = path
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
        self.pending.withLock { pending in
            guard pending.bytes.count + line.count <= Self.maximumPending else {
                pending.dropped += 1
                return
            }
            pending.bytes.append(contentsOf: line)
        }
    }

    /// Writes buffered lines every second until shutdown, then once more.
    public func run() async throws {
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: .seconds(1))
            await self.flush()
        }
        await self.flush()
    }

    /// Writes what is buffered now (also used by tests).
    public func flush() async {
        let (bytes, dropped) = self.pending.withLock { pending in
            defer { pending = Pending() }
            return (pending.bytes, pending.dropped)
        }
        if dropped > 0 { self.logger.warning("audit lines dropped: the disk is not keeping up", metadata: ["count": "\(dropped)"]) }
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
