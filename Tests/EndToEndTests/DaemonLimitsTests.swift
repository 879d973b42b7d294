import BrokerCore
import BrokerServer
import Foundation
import TestSupport
import Testing

/// Bounds that keep one client from hurting the others.
@Suite(.heavy) struct DaemonLimitsTests {
    @Test func connectionsBeyondTheLimitGetAnErrorAndOthersKeepWorking() async throws {
        let daemon = try await RunningDaemon(tenants: 1, start: false)
        try await daemon.start(extraArguments: ["--max-connections", "3"])
        var held = try (0..<3).map { _ in try daemon.connect() }
        for connection in held {
            #expect(try await connection.reply(#"{"jsonrpc":"2.0","id":1,"method":"broker.health"}"#)["result"] != nil)
        }
        let extra = try daemon.connect()
        let refusal = try await extra.nextReply()
        #expect(refusal["error"]?["message"]?.stringValue?.contains("too many connections") == true, "\(refusal)")
        await #expect(throws: BrokerClientError.self) { try await onThread { try extra.readLine() } }
        held.removeLast()
        try await Task.sleep(for: .milliseconds(100))
        let replacement = try daemon.connect()
        #expect(try await replacement.reply(#"{"jsonrpc":"2.0","id":2,"method":"broker.health"}"#)["id"] == 2)
        await daemon.shutdown()
    }

    @Test func aClientThatNeverReadsCannotStallOthersOrGrowMemory() async throws {
        let daemon = try await RunningDaemon(tenants: 1)
        _ = try await daemon.call("token.get", ["tenant": "t0"])
        let pid = try #require(daemon.process?.pid)
        let before = try #require(Self.residentKilobytes(pid: pid))
        let flooder = try daemon.connect()
        let request = Array(#"{"jsonrpc":"2.0","id":1,"method":"token.get","params":{"tenant":"t0"}}"#.utf8) + [0x0a]
        let burst = Array(repeatElement(request, count: 2000).joined())
        var accepted = 0
        for _ in 0..<200 {
            let sent = flooder.sendWithoutBlocking(burst)
            accepted += sent
            if sent < burst.count { break }
        }
        // The daemon stopped reading once the replies went unread: it did not take all we offered.
        #expect(accepted < 200 * burst.count, "accepted \(accepted) bytes")
        // Another client is still answered while the flood sits unread (a stall would hit the
        // connection's read timeout and fail here).
        let bystander = try daemon.connect()
        #expect(try await bystander.reply(#"{"jsonrpc":"2.0","id":7,"method":"token.get","params":{"tenant":"t0"}}"#)["id"] == 7)
        let after = try #require(Self.residentKilobytes(pid: pid))
        #expect(after - before < 64 * 1024, "RSS grew from \(before) kB to \(after) kB")
        await daemon.shutdown()
    }

    static func residentKilobytes(pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return nil }
        return Int(line.split(separator: " ").dropFirst().first ?? "")
    }
}
