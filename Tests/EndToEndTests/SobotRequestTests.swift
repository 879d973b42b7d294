import BrokerCore
import BrokerServer
import Foundation
import TestSupport
import Testing

/// `sobot.request` against the real daemon and the simulator over HTTP: any business endpoint, the
/// token added by the broker, `900002` handled once, and every path that could leave the API refused
/// before any network call.
@Suite(.heavy) struct SobotRequestTests {
    @Test func forwardsMethodPathQueryBodyAndLanguageWithTheBrokersToken() async throws {
        let daemon = try await RunningDaemon(tenants: 1)
        let reply = try await daemon.call(
            "sobot.request",
            [
                "tenant": "t0", "path": "/api/ws/5/ticket/query", "query": ["page": 2, "q": "a b&c"],
                "body": ["ticket_id": "T-1", "n": 3], "language": "en",
            ]
        ).get()
        #expect(reply["status"] == 200)
        let echo = try #require(reply["body"]?["item"])
        #expect(echo["method"] == "POST" && echo["path"] == "/api/ws/5/ticket/query")
        #expect(echo["query"] == "page=2&q=a%20b%26c")
        #expect(echo["body"] == ["ticket_id": "T-1", "n": 3])
        #expect(echo["language"] == "en" && echo["content_type"] == "application/json")
        #expect(echo["token_headers"] == 1)

        let get = try await daemon.call("sobot.request", ["tenant": "t0", "path": "/api/ws/5/agent/list", "method": "GET"]).get()
        #expect(get["body"]?["item"]?["method"] == "GET" && get["body"]?["item"]?["body"] == .null)
        await daemon.shutdown()
    }

    @Test func a900002MidCallRefreshesOnceAndASecondOneIsReturnedAsIs() async throws {
        let daemon = try await RunningDaemon(tenants: 1)
        _ = try await daemon.call("token.get", ["tenant": "t0"]).get()
        #expect(daemon.simulator.tokenRequestCount == 1)
        // Someone else fetched a token: the broker's one is dead upstream.
        daemon.simulator.issueTokenElsewhere(appid: "app0")
        let recovered = try await daemon.call("sobot.request", ["tenant": "t0", "path": "/api/ws/5/ticket/query"]).get()
        #expect(recovered["body"]?["ret_code"] == "000000")
        #expect(daemon.simulator.tokenRequestCount == 2, "one refresh")

        daemon.simulator.businessFault = .returnCode("900002")
        let stale = try await daemon.call("sobot.request", ["tenant": "t0", "path": "/api/ws/5/ticket/query"]).get()
        #expect(stale["status"] == 200 && stale["body"]?["ret_code"] == "900002", "the second 900002 comes back as it came")
        #expect(daemon.simulator.tokenRequestCount == 3, "one refresh for it, then no loop")
        await daemon.shutdown()
    }

    static let refusedPaths = [
        "api/ws/5/x", "/../api/get_token", "/api/ws/../get_token", "//evil.example/api", "/http://evil.example/", "/api/get_token",
        "/API/Get_Token/", "/api/get%5Ftoken", "/api/get%5ftoken", "/%2e%2e/api", "/api/%2E%2E/x", "/api/%2Fevil", "/api/x%zz", "/api\\x",
        "/api/x?y=1", "/api/x#frag", "/api/caf\u{e9}", "/api/a\u{0}b", "/api//x", "/api/./x",
    ]

    @Test func aPathThatCouldLeaveTheAPIIsRefusedBeforeAnyCall() async throws {
        let daemon = try await RunningDaemon(tenants: 1)
        _ = try await daemon.call("token.get", ["tenant": "t0"]).get()
        let before = (daemon.simulator.businessRequestCount, daemon.simulator.tokenRequestCount)
        for path in Self.refusedPaths {
            let outcome = try await daemon.call("sobot.request", ["tenant": "t0", "path": .string(path)])
            guard case .failure(let error) = outcome else {
                Issue.record("\(path.debugDescription) was forwarded")
                continue
            }
            #expect(error.code == -32602, "\(path.debugDescription)")
            #expect(!error.message.contains("evil"), "the path is not echoed")
        }
        #expect(daemon.simulator.businessRequestCount == before.0 && daemon.simulator.tokenRequestCount == before.1, "nothing reached the upstream")
        await daemon.shutdown()
    }

    @Test func anOverlongPathAndBadParamsAreRefused() async throws {
        let daemon = try await RunningDaemon(tenants: 1)
        let long = "/api/" + String(repeating: "a", count: 1100)
        for params: JSONValue in [
            ["tenant": "t0", "path": .string(long)],
            ["tenant": "t0", "path": "/api/x", "method": "DELETE"],
            ["tenant": "t0", "path": "/api/x", "method": "GET", "body": ["a": 1]],
            ["tenant": "t0", "path": "/api/x", "language": "fr"],
            ["tenant": "t0", "path": "/api/x", "query": ["a": ["nested": true]]],
            ["tenant": "t0", "path": "/api/x", "token": "mine"],
        ] {
            let outcome = try await daemon.call("sobot.request", params)
            guard case .failure(let error) = outcome else {
                Issue.record("accepted \(params)")
                continue
            }
            #expect(error.code == -32602)
        }
        #expect(daemon.simulator.businessRequestCount == 0)
        await daemon.shutdown()
    }

    @Test func theAuditLogRecordsMethodPathAndStatusButNoQueryValueOrToken() async throws {
        let daemon = try await RunningDaemon(tenants: 1)
        let token = try await daemon.call("token.get", ["tenant": "t0"]).get()["token"]!.stringValue!
        _ = try await daemon.call("sobot.request", ["tenant": "t0", "path": "/api/ws/5/user/get", "query": ["phone": "13800000000"]]).get()
        let exit = try #require(try await daemon.stop())
        #expect(exit.status == 0)
        let audit = try String(contentsOfFile: daemon.home + "/audit.log", encoding: .utf8)
        let lines = try audit.split(separator: "\n").map { try JSONParser.parse(Array($0.utf8)) }
        #expect(lines.contains {
            $0["method"] == "sobot.request" && $0["tenant"] == "t0" && $0["http_method"] == "POST" && $0["path"] == "/api/ws/5/user/get"
                && $0["status"] == 200
        })
        #expect(!audit.contains("13800000000"), "a query value may be personal data")
        #expect(!audit.contains(token))
        await daemon.shutdown()
    }
}
