import BrokerCore
import BrokerServer
import Foundation
import TestSupport
import Testing

/// The real daemon against callers sending tenant and region names that are not ids.
@Suite(.heavy) struct DaemonTenantNameTests {
    /// `t1\u0000N` once reached the store as `t1` (a C string) while the engine keyed on the whole
    /// string: every N added a phantom tenant, its memory and background retries.
    @Test func tenantNamesThatAreNotTenantIDsAreRefusedAndAddNoTenants() async throws {
        let daemon = try await RunningDaemon(tenants: 2)
        #expect(try await daemon.call("broker.health").get()["tenants"] == 2)
        let requests = (0..<500).map { index in
            #"{"jsonrpc":"2.0","id":\#(index),"method":"token.get","params":{"tenant":"t1\u0000\#(index)"}}"#
        }
        let connection = try daemon.connect()
        try connection.send(line: "[" + requests.joined(separator: ",") + "]")
        let replies = try #require(try JSONValue.line(connection.readLine()).arrayValue)
        #expect(replies.count == 500)
        #expect(replies.allSatisfy { $0["error"]?["code"] == .integer(Int64(ErrorCode.invalidParams)) }, "\(replies.first.map { "\($0)" } ?? "")")
        #expect(!replies.contains { $0["error"]?["message"]?.stringValue?.contains("\u{0}") ?? true }, "the name is not echoed")
        for params: JSONValue in [["tenant": "t1", "region": "sg\u{0}x"], ["tenant": "T1"], ["tenant": .string(String(repeating: "a", count: 65))]] {
            guard case .failure(let error) = try await daemon.call("token.get", params) else {
                Issue.record("\(params) was accepted")
                continue
            }
            #expect(error.code == ErrorCode.invalidParams)
        }
        guard case .failure(let marketing) = try await daemon.call("marketing.catalog.query", ["tenants": ["t0", "t1\u{0}x"]]) else {
            Issue.record("marketing accepted a tenant that is not a tenant id")
            return
        }
        #expect(marketing.code == ErrorCode.invalidParams)
        #expect(try await daemon.call("broker.health").get()["tenants"] == 2)
        #expect(try await daemon.call("broker.status").get()["tokens"]?.arrayValue?.count == 2)
        #expect(try await daemon.call("token.get", ["tenant": "t1"]).get()["tenant"] == "t1")
        await daemon.shutdown()
    }
}
