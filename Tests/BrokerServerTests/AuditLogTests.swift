import BrokerCore
import Foundation
import Logging
import TestSupport
import Testing

@testable import BrokerServer

@Suite struct AuditLogTests {
    /// Lines written past the size limit rotate audit.log → .1 → .2 → .3, the oldest dropped; every
    /// file stays 0600, under the limit, and whole JSON lines.
    @Test func theLogRotatesBySizeKeepingThreeFiles() async throws {
        let directory = TemporaryDirectory("audit")
        let path = directory.file("audit.log")
        let audit = AuditLog(path: path, maximumBytes: 2_000, keptFiles: 3, slotKeys: { _ in nil }, logger: Logger(label: "test"))
        let peer = PeerCredentials(pid: 42, uid: 1000, gid: 1000)
        var written = 0
        for batch in 0..<12 {
            for line in 0..<6 {
                audit.record(peer: peer, method: "token.get", tenant: "tenant-\(batch)-\(line)", region: "sg", outcome: .ok)
                written += 1
            }
            await audit.flush()
        }
        let files = [path] + (1...3).map { "\(path).\($0)" }
        var kept: [JSONValue] = []
        for file in files {
            let attributes = try FileManager.default.attributesOfItem(atPath: file)
            #expect((attributes[.posixPermissions] as? Int) == 0o600, "\(file)")
            #expect(try #require(attributes[.size] as? Int) <= 2_000, "\(file)")
            let text = try String(contentsOfFile: file, encoding: .utf8)
            #expect(text.hasSuffix("\n"))
            kept += try text.split(separator: "\n").map { try JSONParser.parse(Array($0.utf8)) }
        }
        #expect(!FileManager.default.fileExists(atPath: "\(path).4"))
        #expect(kept.count < written, "the oldest file was dropped")
        let newest = try #require(kept.first { $0["tenant"]?.stringValue == "tenant-11-5" })
        #expect(newest["uid"]?.integerValue == 1000 && newest["outcome"]?.stringValue == "ok")
        let order = files.reversed().flatMap { file in
            (try? String(contentsOfFile: file, encoding: .utf8))?.split(separator: "\n").map(String.init) ?? []
        }
        let tenants = try order.map { try #require(try JSONParser.parse(Array($0.utf8))["tenant"]?.stringValue) }
        #expect(tenants.last == "tenant-11-5" && tenants == tenants.sorted { Self.sequence($0) < Self.sequence($1) }, "oldest first across the files")
    }

    /// Counts handed over by many connections of one caller become one line per tenant and region.
    @Test func fastPathCountsMergePerCallerTenantAndRegion() async throws {
        let directory = TemporaryDirectory("audit")
        let path = directory.file("audit.log")
        let acme = TokenKey(tenant: "acme", region: "sg")
        let globex = TokenKey(tenant: "globex", region: "us")
        let slots = SlotNames([acme, globex])
        let audit = AuditLog(path: path, slotKeys: slots.key(of:), logger: Logger(label: "test"))
        let caller = PeerCredentials(pid: 42, uid: 1000, gid: 1000)
        let other = PeerCredentials(pid: 43, uid: 1001, gid: 1001)
        let (acmeSlot, globexSlot) = (slots.slot(acme), slots.slot(globex))
        for _ in 0..<64 {
            audit.recordServed(peer: caller, counts: [acmeSlot: 10, globexSlot: 1])
        }
        audit.recordServed(peer: other, counts: [acmeSlot: 5])
        await audit.flush(includingCounts: false)
        #expect(!FileManager.default.fileExists(atPath: path), "counts wait for their interval")
        await audit.flush()
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { try JSONParser.parse(Array($0.utf8)) }
        #expect(lines.count == 3, "\(lines)")
        func count(_ peer: PeerCredentials, _ key: TokenKey) -> Int64? {
            let line = lines.first {
                $0["pid"]?.integerValue == Int64(peer.pid) && $0["tenant"]?.stringValue == key.tenant && $0["region"]?.stringValue == key.region
            }
            return line?["count"]?.integerValue
        }
        #expect(count(caller, acme) == 640)
        #expect(count(caller, globex) == 64)
        #expect(count(other, acme) == 5)
        #expect(lines.allSatisfy { $0["method"] == "token.get" && $0["outcome"] == "ok" })
    }

    /// Consecutive successes for one slot are one run; a different one starts the next, and a slot
    /// seen again later gets a run of its own (the audit log adds them up).
    @Test func aTallyCountsRunsOfTheSameSlot() {
        var tally = ServedTally()
        for index: Int32 in [0, 0, 1, 2, 2, 0] {
            tally.count(TokenSlot(index: index))
        }
        tally.count(TokenSlot(index: 0), times: 3)
        #expect(tally.runs.map { "\($0.slot.index)=\($0.count)" } == ["0=2", "1=1", "2=2", "0=4"])
        tally.removeAll()
        #expect(tally.isEmpty)
    }

    /// A merge as large as the tenant list (more than the pending-bytes cap) is written whole.
    @Test func aHundredThousandMergedCountsAreAllWritten() async throws {
        let directory = TemporaryDirectory("audit")
        let path = directory.file("audit.log")
        let slots = SlotNames((0..<100_000).map { TokenKey(tenant: "tenant-\($0)", region: "sg") })
        let audit = AuditLog(path: path, maximumBytes: 1 << 30, slotKeys: slots.key(of:), logger: Logger(label: "test"))
        let caller = PeerCredentials(pid: 42, uid: 1000, gid: 1000)
        for batch in stride(from: 0, to: slots.keys.count, by: 1024) {
            var tally = ServedTally()
            for index in batch..<min(batch + 1024, slots.keys.count) { tally.count(TokenSlot(index: Int32(index)), times: 2) }
            audit.recordServed(peer: caller, counts: tally)
        }
        await audit.flush()
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.utf8.count > audit.maximumPending)
        let lines = text.split(separator: "\n")
        #expect(lines.count == 100_000)
        #expect(Set(lines.map { try! JSONParser.parse(Array($0.utf8))["tenant"]?.stringValue ?? "" }).count == 100_000)
    }

    /// Slot numbers for a fixed list of keys, as a token cache gives them.
    struct SlotNames: Sendable {
        let keys: [TokenKey]

        init(_ keys: [TokenKey]) {
            self.keys = keys
        }

        func slot(_ key: TokenKey) -> TokenSlot {
            TokenSlot(index: Int32(self.keys.firstIndex(of: key)!))
        }

        func key(of slot: TokenSlot) -> TokenKey? {
            self.keys.indices.contains(Int(slot.index)) ? self.keys[Int(slot.index)] : nil
        }
    }

    static func sequence(_ tenant: String) -> Int {
        let parts = tenant.split(separator: "-").compactMap { Int($0) }
        return parts[0] * 100 + parts[1]
    }
}
