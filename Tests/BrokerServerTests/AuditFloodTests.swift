import BrokerCore
import Foundation
import Logging
import TestSupport
import Testing

@testable import BrokerServer

/// A stranger flooding refused calls cannot erase the audit trail: what they send is not echoed,
/// and the same refused call is one line with a count.
@Suite struct AuditFloodTests {
    static let stranger = PeerCredentials(pid: 777, uid: 65534, gid: 65534)

    /// The dispatcher the daemon uses, over an empty policy owned by this process: the stranger is
    /// refused before any method runs.
    static func dispatcher(audit: AuditLog) throws -> RPCDispatcher {
        let logger = Logger(label: "test")
        return RPCDispatcher(
            handlers: ["broker.health": { _, _ throws(RPCError) in .object(["status": "ok"]) }],
            registry: try ModuleRegistry([]),
            moduleContext: ModuleContext(upstream: NoUpstream(), logger: logger, clock: ManualClock()),
            access: AccessControl(policy: AccessPolicy(ownerUID: getuid(), rules: [])),
            audit: audit,
            logger: logger
        )
    }

    /// 40 refused calls naming a 1 MiB tenant (and a 64 KiB region, and junk method names) leave the
    /// earlier lines where they were: one small line counts them all, and nothing rotated. (A name
    /// that is not an id is refused with -32602 before the access rules are asked.)
    @Test func aFloodOfHugeDeniedCallsKeepsEarlierLines() async throws {
        let directory = TemporaryDirectory("audit")
        let path = directory.file("audit.log")
        let audit = AuditLog(path: path, maximumBytes: 4 << 20, keptFiles: 3, slotKeys: { _ in nil }, logger: Logger(label: "test"))
        let dispatcher = try Self.dispatcher(audit: audit)
        let owner = CallContext(peer: PeerCredentials(pid: 1, uid: getuid(), gid: getgid()))
        let earlier = try #require(await dispatcher.reply(toLine: Array(#"{"jsonrpc":"2.0","id":1,"method":"broker.health"}"#.utf8), context: owner))
        #expect(String(decoding: earlier, as: UTF8.self).contains("ok"))
        await audit.flush()

        let huge = String(repeating: "x", count: 1 << 20)
        let long = String(repeating: "x", count: 64 << 10)
        let stranger = CallContext(peer: Self.stranger)
        for call in 0..<40 {
            let line = #"{"jsonrpc":"2.0","id":\#(call),"method":"token.get","params":{"tenant":"\#(huge)","region":"\#(long)"}}"#
            let reply = try #require(await dispatcher.reply(toLine: Array(line.utf8), context: stranger))
            #expect(String(decoding: reply, as: UTF8.self).contains("-32602"))
            let junk = #"{"jsonrpc":"2.0","id":1,"method":"\#(long)\#(call)","params":{"tenant":"t0"}}"#
            _ = await dispatcher.reply(toLine: Array(junk.utf8), context: stranger)
            // The service writes every second; the attack this repeats took 12.5 s.
            await audit.flush(includingCounts: false)
        }
        await audit.flush()

        #expect(!FileManager.default.fileExists(atPath: path + ".1"), "nothing was rotated away")
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.utf8.count < 4096, "\(text.utf8.count) bytes")
        #expect(!text.contains("xxx"), "a caller's junk is never echoed")
        let lines = try text.split(separator: "\n").map { try JSONParser.parse(Array($0.utf8)) }
        #expect(lines.first?["method"] == "broker.health" && lines.first?["outcome"] == "ok", "the earlier line is still first")
        let denied = lines.filter { $0["uid"] == 65534 }
        #expect(denied.count == 2, "\(denied)")
        let hugeTenant = try #require(denied.first { $0["method"] == "token.get" })
        #expect(hugeTenant["tenant"] == "<invalid>" && hugeTenant["region"] == "<invalid>")
        #expect(hugeTenant["outcome"] == "error" && hugeTenant["code"] == -32602 && hugeTenant["count"] == 40)
        #expect(hugeTenant["pid"] == 777 && hugeTenant["gid"] == 65534)
        let junkMethod = try #require(denied.first { $0["method"] == "<invalid>" })
        #expect(junkMethod["tenant"] == "t0" && junkMethod["count"] == 40)
    }

    /// Distinct refused calls (valid names a stranger can make up without end) are bounded too:
    /// past the limit they are counted on one `<other>` line per caller and outcome.
    @Test func distinctFailuresPastTheLimitShareAnOtherLine() async throws {
        let directory = TemporaryDirectory("audit")
        let path = directory.file("audit.log")
        let audit = AuditLog(path: path, maximumFailureLines: 16, slotKeys: { _ in nil }, logger: Logger(label: "test"))
        audit.record(peer: PeerCredentials(pid: 5, uid: 1000, gid: 1000), method: "token.get", tenant: "t1", region: nil, outcome: .error, code: -32001)
        for index in 0..<100 {
            audit.record(peer: Self.stranger, method: "token.get", tenant: "made-up-\(index)", region: nil, outcome: .denied, code: -32002)
        }
        await audit.flush(includingCounts: false)
        #expect(!FileManager.default.fileExists(atPath: path), "failures wait for their interval")
        await audit.flush()
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { try JSONParser.parse(Array($0.utf8)) }
        #expect(lines.count == 17, "16 lines, then one <other> line for the stranger: \(lines.count)")
        let other = try #require(lines.first { $0["method"] == "<other>" })
        #expect(other["uid"] == 65534 && other["pid"] == nil && other["outcome"] == "denied" && other["count"] == 85)
        #expect(lines.filter { $0["uid"] == 65534 }.reduce(0) { $0 + ($1["count"]?.integerValue ?? 1) } == 100)
    }

    /// Names are written only when they have the grammar of what they name.
    @Test func onlyValidNamesAreWritten() {
        #expect(AuditField.tenants(["acme", "globex-2"]) == "acme,globex-2")
        #expect(AuditField.tenants(["*"]) == "*")
        #expect(AuditField.tenants(["acme", "Evil\n"]) == "<invalid>")
        #expect(AuditField.tenants([String(repeating: "a", count: 65)]) == "<invalid>")
        #expect(AuditField.tenants((0..<10).map { "t\($0)" }) == "t0,t1,t2,t3,t4,t5,t6,t7,+2 more")
        #expect(AuditField.method("marketing.send_sms") == "marketing.send_sms")
        #expect(AuditField.method("a\"b") == "<invalid>" && AuditField.method(String(repeating: "m", count: 65)) == "<invalid>")
        #expect(AuditField.region("sg") == "sg" && AuditField.region("SG\u{0}") == "<invalid>")
    }

    /// An upstream the refused calls never reach.
    struct NoUpstream: UpstreamCalling {
        func post(tenant: String, region: String?, path: String, body: JSONValue) async throws(ModuleError) -> JSONValue {
            throw .internalError("not reachable in this test")
        }

        func tenantIDs() async throws(ModuleError) -> [String] { [] }
    }
}
