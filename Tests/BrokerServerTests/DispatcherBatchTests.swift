#if canImport(Glibc)
import Glibc
#endif
import BrokerCore
import Logging
import Synchronization
import Testing

@testable import BrokerServer

/// Batches cannot make one line start unbounded work or build an unbounded reply.
@Suite struct DispatcherBatchTests {
    final class Calls: Sendable {
        private let counts = Mutex((running: 0, mostAtOnce: 0, total: 0))
        func begin() { self.counts.withLock { $0.running += 1; $0.total += 1; $0.mostAtOnce = max($0.mostAtOnce, $0.running) } }
        func end() { self.counts.withLock { $0.running -= 1 } }
        var total: Int { self.counts.withLock { $0.total } }
        var mostAtOnce: Int { self.counts.withLock { $0.mostAtOnce } }
    }

    static func dispatcher(_ handlers: [String: RPCDispatcher.Handler]) throws -> RPCDispatcher {
        let logger = Logger(label: "test")
        return RPCDispatcher(
            handlers: handlers,
            registry: try ModuleRegistry([]),
            moduleContext: ModuleContext(upstream: SocketServerPartsTests.NoUpstream(), logger: logger, clock: SystemClock()),
            access: AccessControl(policy: AccessPolicy(ownerUID: getuid(), rules: [])),
            audit: nil,
            logger: logger
        )
    }

    static func batch(_ method: String, count: Int) -> [UInt8] {
        Array(("[" + (0..<count).map { #"{"jsonrpc":"2.0","id":\#($0),"method":"\#(method)"}"# }.joined(separator: ",") + "]").utf8)
    }

    static let owner = CallContext(peer: PeerCredentials(pid: 1, uid: getuid(), gid: getgid()))

    @Test func aBatchRunsAFewRequestsAtATime() async throws {
        let calls = Calls()
        let dispatcher = try Self.dispatcher([
            "slow": { _, _ in
                calls.begin()
                try? await Task.sleep(for: .milliseconds(20))
                calls.end()
                return "done"
            }
        ])
        let reply = try #require(await dispatcher.reply(toLine: Self.batch("slow", count: 100), context: Self.owner))
        #expect(try JSONParser.parse(reply).arrayValue?.count == 100)
        #expect(calls.total == 100)
        #expect(calls.mostAtOnce <= RPCDispatcher.batchConcurrency, "\(calls.mostAtOnce) at once")
    }

    @Test func aBatchWhoseReplyGrowsTooLargeRefusesTheRestUnrun() async throws {
        let calls = Calls()
        let megabyte = JSONValue.string(String(repeating: "x", count: 1 << 20))
        let dispatcher = try Self.dispatcher([
            "big": { _, _ in
                calls.begin()
                calls.end()
                return megabyte
            }
        ])
        let reply = try #require(await dispatcher.reply(toLine: Self.batch("big", count: 200), context: Self.owner))
        #expect(reply.count < RPCDispatcher.maximumBatchReplyBytes + (RPCDispatcher.batchConcurrency + 1) * (1 << 20) + 100_000)
        let replies = try #require(try JSONParser.parse(reply).arrayValue)
        #expect(replies.count == 200, "every request is answered")
        let refused = replies.filter { $0["error"]?["code"] == -32603 }
        #expect(refused.count == 200 - calls.total)
        #expect(calls.total < 40, "\(calls.total) of 200 ran")
        #expect(refused.first?["error"]?["message"]?.stringValue?.contains("send this request again") == true)
    }
}
