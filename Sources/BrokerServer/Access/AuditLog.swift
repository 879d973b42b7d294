import BrokerCore
import Logging
import NIOPosix
import ServiceLifecycle
import Synchronization

/// `<home>/audit.log`: one JSON object per line (time, peer uid/gid/pid, method, tenant, region,
/// outcome, code, count), mode 0600, rotated by size. Never a token, a key or a sign.
///
/// Recording only appends to a memory buffer under a lock; the `run()` service writes it out every
/// second on a thread pool, so no request waits on the disk. Two kinds of calls are merged into
/// one line with a `count` per `countInterval` instead of a line each:
/// - successful `token.get`s served by the socket loops' fast path, which arrive as counts per
///   token slot from each connection and are merged per caller (uid, gid, pid) and slot: sixty-four
///   connections of one process over a thousand tenants make a thousand lines a minute, not
///   sixty-four thousand;
/// - failed and denied calls, merged per caller, method, tenant, region, outcome and code (see
///   `FailureTally`), so a caller repeating a refused call cannot push earlier lines out of the
///   rotated files.
///
/// Names a caller sent are written only when valid (`AuditField`). A write that fails (disk full)
/// leaves no partial line; its lines are kept, within `maximumPending` bytes, for the next try.
public final class AuditLog: Service, Sendable {
    public enum Outcome: String, Sendable {
        case ok
        case error
        case denied
    }

    public var path: String { self.file.path }
    public var maximumBytes: Int { self.file.maximumBytes }
    public var keptFiles: Int { self.file.keptFiles }
    /// Lines beyond this much unwritten output are dropped (and counted) rather than grow memory.
    let maximumPending: Int

    /// How often merged counts (fast-path successes, failures) become lines (and at shutdown).
    public static let countInterval = 60.0
    /// Distinct failure lines per `countInterval` before further ones merge into `<other>` lines.
    public static let maximumFailureLines = 1024

    private struct Pending {
        var bytes: [UInt8] = []
        var dropped = 0
        /// Connections' counts as handed over, merged by the writer (not under this lock).
        var tallies: [(peer: PeerCredentials, counts: ServedTally)] = []
        var failures: FailureTally

        /// Lines beyond `limit` unwritten bytes are counted, not kept.
        mutating func append(_ line: [UInt8], limit: Int) {
            guard self.bytes.count + line.count <= limit else {
                self.dropped += 1
                return
            }
            self.bytes.append(contentsOf: line)
        }
    }

    private let pending: Mutex<Pending>
    /// Fast-path counts merged so far, written every `countInterval`. Only the writer takes this lock.
    private let served = Mutex([PeerCredentials: [TokenSlot: Int]]())
    /// Whether the last write failed: the error is logged once, not every second until the disk frees.
    private let failing = Atomic<Bool>(false)
    /// Names a slot's tenant and region when its count is written (`TokenCache.key(of:)`).
    private let slotKeys: @Sendable (TokenSlot) -> TokenKey?
    private let file: AuditFile
    private let logger: Logger

    public init(
        path: String,
        maximumBytes: Int = 16 << 20,
        keptFiles: Int = 3,
        maximumPending: Int = 8 << 20,
        maximumFailureLines: Int = AuditLog.maximumFailureLines,
        slotKeys: @escaping @Sendable (TokenSlot) -> TokenKey?,
        logger: Logger
    ) {
        self.file = AuditFile(path: path, maximumBytes: maximumBytes, keptFiles: keptFiles)
        self.maximumPending = maximumPending
        self.pending = Mutex(Pending(failures: FailureTally(maximumEntries: maximumFailureLines)))
        self.slotKeys = slotKeys
        self.logger = logger
    }

    /// Records one call, or `count` of them. `tenants` are the ones the request named (`["*"]` for
    /// every tenant). Successes become a line at the next write; failures are merged and counted.
    public func record(
        peer: PeerCredentials,
        method: String,
        tenants: [String],
        region: String?,
        outcome: Outcome,
        code: Int? = nil,
        call: ForwardedCallRecord? = nil,
        count: Int = 1,
        now: Double = SystemClock().unixNow()
    ) {
        self.record(
            caller: (peer.uid, peer.gid, peer.pid, nil),
            method: method, tenants: tenants, region: region, outcome: outcome, code: code, call: call, count: count, now: now
        )
    }

    /// Records a call made with a client key (the HTTP proxy's TCP port), which has no local uid.
    public func record(
        clientKey: String,
        method: String,
        tenant: String?,
        region: String?,
        outcome: Outcome,
        code: Int? = nil,
        call: ForwardedCallRecord? = nil,
        now: Double = SystemClock().unixNow()
    ) {
        self.record(
            caller: (nil, nil, nil, clientKey),
            method: method, tenants: tenant.map { [$0] } ?? [], region: region, outcome: outcome, code: code, call: call, count: 1, now: now
        )
    }

    private func record(
        caller: (uid: UInt32?, gid: UInt32?, pid: Int32?, clientKey: String?),
        method: String,
        tenants: [String],
        region: String?,
        outcome: Outcome,
        code: Int?,
        call: ForwardedCallRecord?,
        count: Int,
        now: Double
    ) {
        let entry = AuditEntry(
            uid: caller.uid,
            gid: caller.gid,
            pid: caller.pid,
            method: AuditField.method(method),
            tenant: tenants.isEmpty ? nil : AuditField.tenants(tenants),
            region: region.map { AuditField.region($0) },
            outcome: outcome,
            code: code,
            call: call,
            clientKey: caller.clientKey
        )
        guard outcome == .ok else {
            self.pending.withLock { $0.failures.add(entry, count: count, now: now) }
            return
        }
        let line = entry.line(count: count, time: now)
        self.pending.withLock { $0.append(line, limit: self.maximumPending) }
    }

    /// `record` for a call naming at most one tenant.
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
        self.record(peer: peer, method: method, tenants: tenant.map { [$0] } ?? [], region: region, outcome: outcome, code: code, count: count, now: now)
    }

    /// Adds a connection's fast-path successes since it last reported.
    /// Called on socket loops: an append under the lock; the merging happens in `flush`.
    public func recordServed(peer: PeerCredentials, counts: ServedTally) {
        self.pending.withLock { $0.tallies.append((peer, counts)) }
    }

    /// Writes buffered lines every second, and merged counts every `countInterval`, until shutdown;
    /// then both once more.
    public func run() async throws {
        var countedAt = ContinuousClock.now
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            try? await Task.sleep(for: .seconds(1))
            let countsDue = ContinuousClock.now - countedAt >= .seconds(Self.countInterval)
            if countsDue { countedAt = ContinuousClock.now }
            await self.flush(includingCounts: countsDue)
        }
        await self.flush(includingCounts: true)
    }

    /// Writes what is buffered now, and with `includingCounts` the merged counts too.
    public func flush(includingCounts: Bool = true) async {
        // While writes fail, drops add up and are reported once the log is written again.
        let failing = self.failing.load(ordering: .relaxed)
        let (bytes, dropped, tallies, failures) = self.pending.withLock { pending in
            let taken = (pending.bytes, failing ? 0 : pending.dropped, pending.tallies, pending.failures)
            pending.bytes = []
            pending.tallies = []
            if !failing { pending.dropped = 0 }
            if includingCounts { pending.failures = FailureTally(maximumEntries: pending.failures.maximumEntries) }
            return taken
        }
        let served = self.mergeServed(tallies, taking: includingCounts)
        if dropped > 0 {
            self.logger.warning("audit lines dropped: the disk is not keeping up", metadata: ["count": "\(dropped)"])
        }
        var writer = Writer(log: self, unwritten: bytes)
        await writer.write()
        guard includingCounts else { return await writer.finish() }
        if failures.dropped > 0 {
            self.logger.warning("audit: failed calls not counted: too many distinct ones", metadata: ["count": "\(failures.dropped)"])
        }
        for (entry, count) in failures.entries {
            await writer.add(entry.line(count: count.count, time: count.first))
        }
        // Merged counts can be a line per tenant: written in pieces, never all held at once.
        let now = SystemClock().unixNow()
        for (peer, counts) in served {
            for (slot, count) in counts {
                guard let key = self.slotKeys(slot) else { continue }
                let entry = AuditEntry(uid: peer.uid, gid: peer.gid, pid: peer.pid, method: "token.get", tenant: key.tenant, region: key.region, outcome: .ok)
                await writer.add(entry.line(count: count, time: now))
            }
        }
        await writer.finish()
    }

    /// Merges connections' fast-path counts into `served`; with `taking`, returns (and clears) them.
    private func mergeServed(_ tallies: [(peer: PeerCredentials, counts: ServedTally)], taking: Bool) -> [PeerCredentials: [TokenSlot: Int]] {
        self.served.withLock { merged in
            for tally in tallies {
                // Taken out while merging, so adding to it never copies it.
                var counts = merged.removeValue(forKey: tally.peer) ?? [:]
                for run in tally.counts.runs {
                    counts[run.slot, default: 0] += run.count
                }
                merged[tally.peer] = counts
            }
            guard taking else { return [:] }
            defer { merged = [:] }
            return merged
        }
    }

    /// How many bytes of lines are written at a time.
    static let writePiece = 256 << 10

    /// One flush's output, written in pieces. Once a write fails, the rest is kept back (within
    /// `maximumPending`) and handed to the next flush ahead of what was recorded meanwhile.
    private struct Writer {
        let log: AuditLog
        var unwritten: [UInt8]
        var blocked = false
        var dropped = 0

        mutating func add(_ line: [UInt8]) async {
            if self.blocked, self.unwritten.count + line.count > self.log.maximumPending {
                self.dropped += 1
                return
            }
            self.unwritten += line
            if !self.blocked, self.unwritten.count >= AuditLog.writePiece { await self.write() }
        }

        mutating func write() async {
            guard !self.blocked, !self.unwritten.isEmpty else { return }
            if await self.log.writeOut(self.unwritten) {
                self.unwritten.removeAll(keepingCapacity: true)
            } else {
                self.blocked = true
            }
        }

        mutating func finish() async {
            await self.write()
            guard self.blocked else { return }
            let (kept, dropped, limit) = (self.unwritten, self.dropped, self.log.maximumPending)
            self.log.pending.withLock { pending in
                pending.dropped += dropped
                guard kept.count + pending.bytes.count > limit else {
                    pending.bytes = kept + pending.bytes
                    return
                }
                // Over the limit: the oldest whole lines are kept, the newest dropped and counted.
                var bytes: [UInt8] = []
                for line in (kept + pending.bytes).split(separator: 0x0a, omittingEmptySubsequences: true) {
                    guard bytes.count + line.count + 1 <= limit else {
                        pending.dropped += 1
                        continue
                    }
                    bytes += line
                    bytes.append(0x0a)
                }
                pending.bytes = bytes
            }
        }
    }

    /// Appends `bytes` on the thread pool; false (logged when it starts failing) if it could not.
    private func writeOut(_ bytes: [UInt8]) async -> Bool {
        do {
            try await NIOThreadPool.singleton.runIfActive { try self.file.append(bytes) }
            if self.failing.exchange(false, ordering: .relaxed) {
                let dropped = self.pending.withLock { pending in
                    defer { pending.dropped = 0 }
                    return pending.dropped
                }
                self.logger.notice("the audit log is written again", metadata: ["path": "\(self.path)", "dropped": "\(dropped)"])
            }
            return true
        } catch {
            if !self.failing.exchange(true, ordering: .relaxed) {
                self.logger.error(
                    "cannot write the audit log; keeping up to \(self.maximumPending >> 10) KiB of lines until it can",
                    metadata: ["path": "\(self.path)", "error": "\(error)"]
                )
            }
            return false
        }
    }
}
