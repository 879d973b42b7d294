import BrokerCore
import Testing

@testable import BrokerServer

@Suite struct FastPathTests {
    static func parse(_ line: String) -> FastTokenRequest? {
        Array(line.utf8).withUnsafeBytes { FastTokenRequest.parse($0) }
    }

    static func fastLine(_ line: String, _ request: FastTokenRequest, key: TokenKey, token: LiveToken, now: Double) -> [UInt8] {
        var buffer: [UInt8] = []
        FastTokenReply.write(
            id: Array(line.utf8)[request.id],
            fragments: FastTokenReply.fragments(key: key, token: token),
            expiresIn: max(0, Int64(token.expiresAt - now)),
            into: &buffer
        )
        return buffer
    }

    static func generalLine(_ line: String, key: TokenKey, token: LiveToken, now: Double) throws -> [UInt8] {
        let id = try #require(try JSONParser.parse(Array(line.utf8))["id"])
        return RPCResponse.line(RPCResponse.success(id: id, result: BrokerMethods.tokenResult(key: key, token: token, now: now)))
    }

    @Test(arguments: [
        #"{"jsonrpc":"2.0","id":1,"method":"token.get","params":{"tenant":"acme","region":"sg"}}"#,
        #"{"jsonrpc":"2.0","id":-42,"method":"token.get","params":{"tenant":"acme"}}"#,
        #"{"id":123456789012345678,"params":{"region":"sg","tenant":"acme"},"method":"token.get","jsonrpc":"2.0"}"#,
        #" { "method" : "token.get" , "jsonrpc":"2.0", "id" : "req-7 a_b" , "params" : { "tenant" : "acme" } } "#,
        #"{"jsonrpc":"2.0","id":"","method":"token.get","params":{"tenant":"acme"}}"#,
        #"{"jsonrpc":"2.0","id":0,"method":"token.get","params":{"tenant":"acme"}}"#,
    ])
    func fastRepliesEqualTheGeneralPathByteForByte(_ line: String) throws {
        let request = try #require(Self.parse(line))
        #expect(request.tenant == "acme")
        let key = TokenKey(tenant: "acme", region: "sg")
        for token in [
            LiveToken(value: "4ac37cb2e9c740dba4b75a34d5358802", issuedAt: 7_000, expiresAt: 93_400, expiresAtUnix: 1_800_086_400),
            LiveToken(value: "odd \"token\" \\ with \u{01} and é", issuedAt: 7_000.5, expiresAt: 7_020.75, expiresAtUnix: 1_800_000_020),
        ] {
            for now in [7_001.0, 7_019.9, 93_399.999] {
                #expect(Self.fastLine(line, request, key: key, token: token, now: now) == (try Self.generalLine(line, key: key, token: token, now: now)))
            }
        }
    }

    @Test(arguments: [
        #"{"jsonrpc":"2.0","method":"token.get","params":{"tenant":"acme"}}"#,
        #"{"jsonrpc":"2.0","id":1.0,"method":"token.get","params":{"tenant":"acme"}}"#,
        #"{"jsonrpc":"2.0","id":01,"method":"token.get","params":{"tenant":"acme"}}"#,
        #"{"jsonrpc":"2.0","id":-0,"method":"token.get","params":{"tenant":"acme"}}"#,
        #"{"jsonrpc":"2.0","id":1e3,"method":"token.get","params":{"tenant":"acme"}}"#,
        #"{"jsonrpc":"2.0","id":1234567890123456789,"method":"token.get","params":{"tenant":"acme"}}"#,
        #"{"jsonrpc":"2.0","id":null,"method":"token.get","params":{"tenant":"acme"}}"#,
        #"{"jsonrpc":"2.0","id":"a\"b","method":"token.get","params":{"tenant":"acme"}}"#,
        #"{"jsonrpc":"2.0","id":"é","method":"token.get","params":{"tenant":"acme"}}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"token.get","params":{"tenant":"ac\u006de"}}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"token.get","params":{"tenant":"acme","extra":1}}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"token.get","params":{"tenant":"acme","tenant":"other"}}"#,
        #"{"jsonrpc":"2.0","id":1,"id":2,"method":"token.get","params":{"tenant":"acme"}}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"token.get","params":{"tenant":"acme"},"x":1}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"token.get","params":{"tenant":"acme"}} trailing"#,
        #"{"jsonrpc":"2.0","id":1,"method":"token.get","params":{"tenant":""}}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"token.get","params":{}}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"token.get","params":["acme"]}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"token.get"}"#,
        #"{"jsonrpc":"1.0","id":1,"method":"token.get","params":{"tenant":"acme"}}"#,
        #"{"jsonrpc":"2.0","id":1,"method":"token.invalidate","params":{"tenant":"acme"}}"#,
        #"[{"jsonrpc":"2.0","id":1,"method":"token.get","params":{"tenant":"acme"}}]"#,
        #"{"jsonrpc":"2.0","id":1,"method":"token.get","params":{"tenant":5}}"#,
    ])
    func anythingUnusualIsLeftToTheGeneralPath(_ line: String) {
        #expect(Self.parse(line) == nil)
    }
}
