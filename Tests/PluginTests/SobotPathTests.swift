import BrokerModuleSDK
import Testing

/// The forwarded path's rules on their own: what is accepted is what is sent, and nothing accepted
/// can name another host, climb out of the API or reach `get_token`.
@Suite struct SobotPathTests {
    @Test func validPathsAreSentDecoded() throws {
        #expect(try SobotPath(validating: "/api/ws/5/ticket/save_user_ticket").value == "/api/ws/5/ticket/save_user_ticket")
        #expect(try SobotPath(validating: "/api/ws/5/ticket%2Dquery/").value == "/api/ws/5/ticket-query/")
        #expect(try SobotPath(validating: "/chat-kwb/api/v5/get_token_info").value == "/chat-kwb/api/v5/get_token_info")
    }

    @Test func queriesKeepTheirEncodingAndRefuseWhatCouldBreakTheURL() throws {
        #expect(try SobotQuery(validatingEncoded: "a=1&b=%E4%B8%AD&c=x+y").encoded == "a=1&b=%E4%B8%AD&c=x+y")
        for bad in ["a=1 2", "a=%zz", "a=1#f", "a=\u{0}", "a=\"x\"", "a=<b>", "a=%4"] {
            #expect(throws: ModuleError.self, "\(bad.debugDescription)") { try SobotQuery(validatingEncoded: bad) }
        }
        #expect(try SobotQuery(parameters: ["b": "x y", "a": 1]).encoded == "a=1&b=x%20y")
    }

    /// Random paths over the characters that matter: whatever is accepted is safe to append to a base URL.
    @Test func nothingAcceptedIsUnsafe() {
        let alphabet = Array("/.%2eE5fF_-aAgt~:\\?#@ ".utf8)
        var generator = SystemRandomNumberGenerator()
        var accepted = 0
        for _ in 0..<50_000 {
            let length = Int.random(in: 1...14, using: &generator)
            let raw = String(decoding: (0..<length).map { _ in alphabet.randomElement(using: &generator)! }, as: UTF8.self)
            guard let path = try? SobotPath(validating: raw) else { continue }
            accepted += 1
            let value = path.value
            #expect(value.hasPrefix("/") && !value.contains("//") && !value.contains("%"), "\(raw.debugDescription) → \(value)")
            #expect(!value.split(separator: "/").contains { $0 == ".." || $0 == "." }, "\(raw.debugDescription)")
            #expect(value.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7f && !":\\?#@".utf8.contains($0) }, "\(raw.debugDescription)")
        }
        #expect(accepted > 100, "the generator reaches valid paths too")
    }
}
