import BrokerCore
import Foundation
import Logging
import Synchronization
import TestSupport
import Testing

@testable import BrokerServer

/// The audit log on a full disk: a write that does not fit leaves no half line, and its lines are
/// written once there is room again.
@Suite struct AuditLogDiskFullTests {
    static let peer = PeerCredentials(pid: 42, uid: 1000, gid: 1000)

    /// A 64 KiB tmpfs mounted on a temporary directory for the test's duration (root only).
    final class SmallDisk {
        let directory = TemporaryDirectory("audit-disk")
        private(set) var mounted = false

        private init() {
            self.mounted = getuid() == 0 && mount("tmpfs", self.directory.path, "tmpfs", 0, "size=64k,mode=0700") == 0
        }

        /// A mounted disk, or nil (saying why `test` is skipped) when it cannot be mounted.
        static func mounted(for test: String = #function) -> SmallDisk? {
            let disk = SmallDisk()
            guard disk.mounted else {
                print("skipped \(test): needs root to mount a small tmpfs")
                return nil
            }
            return disk
        }

        func file(_ name: String) -> String { self.directory.file(name) }

        /// Fills the disk with `filler`, then frees `free` bytes of it.
        func fill(leaving free: Int) throws {
            let fd = open(self.file("filler"), O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            guard fd >= 0 else { throw DaemonTestError("cannot create the filler") }
            defer { close(fd) }
            let block = [UInt8](repeating: 0x2e, count: 4096)
            while block.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
            var info = stat()
            fstat(fd, &info)
            ftruncate(fd, max(0, info.st_size - off_t(free)))
        }

        deinit {
            if self.mounted { umount2(self.directory.path, Int32(MNT_DETACH)) }
        }
    }

    @Test func aWriteThatDoesNotFitLeavesNoPartialLineAndIsWrittenLater() async throws {
        guard let disk = SmallDisk.mounted() else { return }
        let path = disk.file("audit.log")
        let audit = AuditLog(path: path, slotKeys: { _ in nil }, logger: Logger(label: "test"))
        let peer = Self.peer
        audit.record(peer: peer, method: "broker.health", tenant: nil, region: nil, outcome: .ok)
        await audit.flush()

        // A page free (plus the rest of audit.log's first page): far less than the next batch.
        try disk.fill(leaving: 4096)
        let batch = 200
        for index in 0..<batch {
            audit.record(peer: peer, method: "token.get", tenant: "tenant-\(index)", region: "sg", outcome: .ok)
        }
        await audit.flush()
        let onFullDisk = try String(contentsOfFile: path, encoding: .utf8)
        #expect(onFullDisk.hasSuffix("\n"), "no torn line: \(onFullDisk.suffix(80))")
        #expect(onFullDisk.split(separator: "\n").count == 1, "the failed write was cut back off")
        // More flushes while it is full add nothing, and lose nothing kept.
        await audit.flush()
        #expect(try String(contentsOfFile: path, encoding: .utf8) == onFullDisk)

        unlink(disk.file("filler"))
        await audit.flush()
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let lines = try text.split(separator: "\n").map { try JSONParser.parse(Array($0.utf8)) }
        #expect(lines.count == 1 + batch, "every kept line is written once there is room")
        #expect(lines.last?["tenant"]?.stringValue == "tenant-\(batch - 1)")
    }

    /// While the disk stays full, the lines kept for later are bounded and the rest dropped; the
    /// failure is logged once, and the drops when writing resumes.
    @Test func linesKeptWhileTheDiskIsFullAreBounded() async throws {
        guard let disk = SmallDisk.mounted() else { return }
        let path = disk.file("audit.log")
        let messages = RecordedMessages()
        let logger = Logger(label: "test") { _ in messages }
        let audit = AuditLog(path: path, maximumPending: 4096, slotKeys: { _ in nil }, logger: logger)
        let peer = Self.peer
        try disk.fill(leaving: 0)
        for round in 0..<5 {
            for index in 0..<100 {
                audit.record(peer: peer, method: "token.get", tenant: "tenant-\(round)-\(index)", region: "sg", outcome: .ok)
            }
            await audit.flush()
        }
        unlink(disk.file("filler"))
        await audit.flush()
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.utf8.count <= 4096 && text.hasSuffix("\n"))
        let lines = try text.split(separator: "\n").map { try JSONParser.parse(Array($0.utf8)) }
        #expect(lines.count > 10 && lines.count < 500, "\(lines.count)")
        #expect(lines.first?["tenant"] == "tenant-0-0", "the oldest kept lines come first")
        let logged = messages.all
        #expect(logged.filter { $0.hasPrefix("cannot write the audit log") }.count == 1, "\(logged)")
        #expect(logged.filter { $0.hasPrefix("the audit log is written again") }.count == 1, "\(logged)")
        // Lines dropped before the write failed are reported at once; those dropped while it failed,
        // when writing resumes: every one of them, once.
        let reported = logged.compactMap { message in
            message.split(separator: " ").first { $0.hasPrefix("count=") || $0.hasPrefix("dropped=") }.flatMap { Int($0.split(separator: "=")[1]) }
        }
        #expect(reported.reduce(0, +) == 500 - lines.count, "\(lines.count) lines: \(logged)")
    }

    /// Every message logged, with its metadata, as `message key=value…`.
    final class RecordedMessages: LogHandler, @unchecked Sendable {
        private let messages = Mutex<[String]>([])
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        var all: [String] { self.messages.withLock { $0 } }

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { self.metadata[key] }
            set { self.metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let metadata = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
            self.messages.withLock { $0.append(([event.message.description] + metadata).joined(separator: " ")) }
        }
    }
}
