import BrokerCore
import BrokerServer
import Foundation
import TestSupport
import Testing

/// JSON-RPC 2.0 framing and error paths over the real socket.
@Suite(.heavy) struct DaemonProtocolTests {
    @Test func everyErrorPathAnswersAndTheConnectionStaysUsable() async throws {
        let daemon = try await RunningDaemon(tenants: 1)
        let connection = try daemon.connect()
        let cases: [(String, Int, JSONValue)] = [
            ("{not json", -32700, .null),
            (#"{"jsonrpc":"2.0","id":1,"method":"broker.health""#, -32700, .null),
            ("42", -32600, .null),
            (#""a string""#, -32600, .null),
            (#"{"jsonrpc":"1.0","id":7,"method":"broker.health"}"#, -32600, 7),
            (#"{"id":8,"method":"broker.health"}"#, -32600, 8),
            (#"{"jsonrpc":"2.0","id":{"a":1},"method":"broker.health"}"#, -32600, .null),
            (#"{"jsonrpc":"2.0","id":9,"method":5}"#, -32600, 9),
            (#"{"jsonrpc":"2.0","id":10,"method":"token.get","params":"t0"}"#, -32600, 10),
            (#"{"jsonrpc":"2.0","id":11,"method":"no.such.method"}"#, -32601, 11),
            (#"{"jsonrpc":"2.0","id":"s","method":"token.get","params":{"tenant":5}}"#, -32602, "s"),
            (#"{"jsonrpc":"2.0","id":12,"method":"token.get","params":{"tenant":"t0","regoin":"sg"}}"#, -32602, 12),
            (#"{"jsonrpc":"2.0","id":13,"method":"token.get","params":["t0"]}"#, -32602, 13),
            ("[]", -32600, .null),
        ]
        for (line, code, id) in cases {
            let reply = try await connection.reply(line)
            #expect(reply["jsonrpc"] == "2.0", "\(line)")
            #expect(reply["error"]?["code"]?.integerValue == Int64(code), "\(line) → \(reply)")
            #expect(reply["error"]?["message"]?.stringValue?.isEmpty == false)
            #expect(reply["id"] == id, "\(line) → \(reply)")
        }
        // Invalid UTF-8 inside a string.
        try await onThread { try connection.send([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d, 0x0a]) }
        #expect(try await connection.nextReply()["error"]?["code"] == -32700)
        // Still usable.
        let health = try await connection.reply(#"{"jsonrpc":"2.0","id":"after","method":"broker.health"}"#)
        #expect(health["result"]?["status"] == "ok" && health["id"] == "after")
        await daemon.shutdown()
    }

    @Test func notificationsGetNoReplyAndBatchesGetArrays() async throws {
        let daemon = try await RunningDaemon(tenants: 1)
        let connection = try daemon.connect()
        try await onThread {
            try connection.send(line: #"{"jsonrpc":"2.0","method":"broker.health"}"#)
            try connection.send(line: #"{"jsonrpc":"2.0","method":"no.such.method"}"#)
        }
        let next = try await connection.reply(#"{"jsonrpc":"2.0","id":"first-reply","method":"broker.health"}"#)
        #expect(next["id"] == "first-reply", "notifications must not be answered")

        let batch = try await connection.reply(
            #"[{"jsonrpc":"2.0","id":1,"method":"broker.health"},{"jsonrpc":"2.0","method":"broker.health"},{"jsonrpc":"2.0","id":2,"method":"token.get","params":{"tenant":"t0"}},{"jsonrpc":"2.0","id":3,"method":"nope"},5]"#
        )
        let replies = try #require(batch.arrayValue)
        #expect(replies.count == 4)
        let ids = Set(replies.map { $0["id"] ?? JSONValue.null })
        #expect(ids == Set<JSONValue>([1, 2, 3, .null]))
        #expect(replies.first { $0["id"] == 2 }?["result"]?["token"]?.stringValue != nil)
        #expect(replies.first { $0["id"] == 3 }?["error"]?["code"] == -32601)
        #expect(replies.first { $0["id"] == .null }?["error"]?["code"] == -32600)

        try await onThread { try connection.send(line: #"[{"jsonrpc":"2.0","method":"broker.health"}]"#) }
        let after = try await connection.reply(#"{"jsonrpc":"2.0","id":"x","method":"broker.health"}"#)
        #expect(after["id"] == "x", "a batch of notifications gets no reply")
        await daemon.shutdown()
    }

    /// Cached `token.get`s are answered on the socket loop and everything else on the general path;
    /// a fast line sent after a slow one still gets its reply after the slow one's.
    @Test func repliesKeepRequestOrderAcrossTheFastAndGeneralPaths() async throws {
        let daemon = try await RunningDaemon(tenants: 1)
        _ = try await daemon.call("token.get", ["tenant": "t0"])
        let connection = try daemon.connect()
        let fast = { (id: Int) in #"{"jsonrpc":"2.0","id":\#(id),"method":"token.get","params":{"tenant":"t0"}}"# }
        let lines = [
            fast(1),
            #"{"jsonrpc":"2.0","id":2,"method":"tenant.list"}"#,
            fast(3),
            fast(4),
            #"{"jsonrpc":"2.0","method":"broker.health"}"#,
            fast(5),
            "{not json",
            fast(6),
        ]
        try await onThread { try connection.send(Array(lines.joined(separator: "\n").utf8) + [0x0a]) }
        var ids: [JSONValue] = []
        for _ in 0..<7 { ids.append(try await connection.nextReply()["id"] ?? "missing") }
        #expect(ids == [1, 2, 3, 4, 5, .null, 6])
        await daemon.shutdown()
    }

    /// With several socket loops, the first accepts and deals connections out to the others; each
    /// connection is served whole by its loop, fast and general path alike.
    @Test func connectionsDealtToSeveralLoopsAreEachServedInOrder() async throws {
        let daemon = try await RunningDaemon(tenants: 2, start: false)
        try await daemon.start(extraArguments: ["--threads", "3"])
        let connections = try (0..<9).map { _ in try daemon.connect() }
        for (index, connection) in connections.enumerated() {
            let tenant = "t\(index % 2)"
            let lines = [
                #"{"jsonrpc":"2.0","id":1,"method":"token.get","params":{"tenant":"\#(tenant)"}}"#,
                #"{"jsonrpc":"2.0","id":2,"method":"broker.health"}"#,
                #"{"jsonrpc":"2.0","id":3,"method":"token.get","params":{"tenant":"\#(tenant)"}}"#,
            ]
            try await onThread { try connection.send(Array(lines.joined(separator: "\n").utf8) + [0x0a]) }
        }
        for (index, connection) in connections.enumerated() {
            let replies = [try await connection.nextReply(), try await connection.nextReply(), try await connection.nextReply()]
            #expect(replies.map { $0["id"] } == [1, 2, 3])
            #expect(replies[0]["result"]?["tenant"] == .string("t\(index % 2)"))
            #expect(replies[0]["result"]?["token"] == replies[2]["result"]?["token"])
            #expect(replies[1]["result"]?["status"] == "ok")
        }
        await daemon.shutdown()
    }

    /// A client that shuts down its sending side after its requests (as `socat` does at the end of
    /// its input) gets every reply, then the daemon closes the connection.
    @Test func aClientThatHalfClosesGetsEveryReplyThenEndOfStream() async throws {
        let daemon = try await RunningDaemon(tenants: 1)
        let connection = try daemon.connect()
        let requests = [
            #"{"jsonrpc":"2.0","id":1,"method":"token.get","params":{"tenant":"t0"}}"#,
            #"{"jsonrpc":"2.0","id":2,"method":"broker.health"}"#,
            #"{"jsonrpc":"2.0","id":3,"method":"token.get","params":{"tenant":"t0"}}"#,
        ]
        try await onThread { try connection.send(Array(requests.joined(separator: "\n").utf8) + [0x0a]) }
        #expect(shutdown(connection.descriptorForLoad, Int32(SHUT_WR)) == 0)
        for id in 1...3 {
            let reply = try await connection.nextReply()
            #expect(reply["id"] == .integer(Int64(id)) && reply["result"] != nil, "\(reply)")
        }
        await #expect(throws: BrokerClientError.self) { try await onThread { try connection.readLine() } }
        await daemon.shutdown()
    }

    @Test func anOverlongLineClosesOnlyItsOwnConnection() async throws {
        let daemon = try await RunningDaemon(tenants: 1)
        let bystander = try daemon.connect()
        #expect(try await bystander.reply(#"{"jsonrpc":"2.0","id":1,"method":"broker.health"}"#)["result"] != nil)
        let offender = try daemon.connect()
        let huge = #"{"jsonrpc":"2.0","id":1,"method":"broker.health","params":{"pad":""# + String(repeating: "x", count: 2 << 20) + "\"}}\n"
        try? await onThread { try offender.send(Array(huge.utf8)) }
        let error = try await offender.nextReply()
        #expect(error["error"]?["code"] == -32600)
        await #expect(throws: BrokerClientError.self) { try await onThread { try offender.readLine() } }
        #expect(try await bystander.reply(#"{"jsonrpc":"2.0","id":2,"method":"broker.health"}"#)["id"] == 2)
        #expect(try await daemon.call("broker.health").get()["status"] == "ok")
        await daemon.shutdown()
    }

    @Test func twoHundredConnectionsMakingAHundredRequestsEach() async throws {
        let daemon = try await RunningDaemon(tenants: 4)
        let socket = daemon.socket
        let correct = try await onThread {
            let connections = try (0..<200).map { _ in try BrokerConnection(socketPath: socket, timeoutSeconds: 30) }
            var correct = 0
            for round in 0..<100 {
                for (index, connection) in connections.enumerated() {
                    try connection.send(line: #"{"jsonrpc":"2.0","id":\#(round * 1000 + index),"method":"token.get","params":{"tenant":"t\#(index % 4)"}}"#)
                }
                for (index, connection) in connections.enumerated() {
                    let reply = try JSONParser.parse(try connection.readLine())
                    if reply["id"]?.integerValue == Int64(round * 1000 + index), reply["result"]?["tenant"] == .string("t\(index % 4)"),
                        let token = reply["result"]?["token"]?.stringValue, !token.isEmpty
                    {
                        correct += 1
                    }
                }
            }
            return correct
        }
        #expect(correct == 20_000)
        #expect(daemon.simulator.tokenRequestCount == 4)
        await daemon.shutdown()
    }
}
