import BrokerCore
import Testing

@Suite struct SignatureTests {
    /// The contract's worked example.
    @Test func signMatchesTheWorkedExample() {
        #expect(SobotSignature.sign(appid: "1", createTime: 1_569_397_773, appKey: "2") == "258eec3118705112b2c53dc8043d4d34")
    }

    @Test func md5OfKnownVectors() {
        #expect(MD5.hexDigest([]) == "d41d8cd98f00b204e9800998ecf8427e")
        #expect(MD5.hexDigest(Array("abc".utf8)) == "900150983cd24fb0d6963f7d28e17f72")
    }
}

@Suite struct JSONTests {
    @Test func parsesAndWritesBackExactly() throws {
        let text = #"{"a":[1,-2,3.5,true,false,null],"big":1123412432341234123412431,"s":"x\"\n\u00e9\ud83d\ude00"}"#
        let value = try JSONParser.parse(Array(text.utf8))
        #expect(value["big"] == .bigInteger("1123412432341234123412431"))
        #expect(value["s"] == .string("x\"\né😀"))
        #expect(value["a"] == [1, -2, .double(3.5), true, false, nil])
        #expect(try JSONParser.parse(JSONWriter.bytes(value)) == value)
    }

    @Test(arguments: [
        "", "{", "[1,]", "{\"a\":1,}", "01", "1.", "-", "nul", "\"\u{01}\"", "\"\\x\"", "\"\\ud800\"", "[1] 2", "{\"a\" 1}",
    ])
    func rejectsMalformedJSON(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(Array(text.utf8)) }
    }

    @Test func rejectsInvalidUTF8() {
        #expect(throws: JSONParseError.self) { try JSONParser.parse([0x22, 0xff, 0xfe, 0x22]) }
        #expect(throws: JSONParseError.self) { try JSONParser.parse([0x22, 0x5c, 0x6e, 0xc3, 0x22]) }
    }

    @Test func rejectsDeepNestingWithoutCrashing() {
        let deep = Array(repeating: UInt8(ascii: "["), count: 100_000)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(deep) }
        let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect((try? JSONParser.parse(Array(ok.utf8))) != nil)
    }

    /// Numbers beyond Int64 or Double never trap: they stay exact digits, are refused, or read as nil.
    @Test func hostileNumbersNeverTrap() throws {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(Array("1e400".utf8)) }
        #expect(try JSONParser.parse(Array("123456789012345678901234567890".utf8)) == .bigInteger("123456789012345678901234567890"))
        #expect(try JSONParser.parse(Array("-9223372036854775809".utf8)) == .bigInteger("-9223372036854775809"))
        let hostile: [JSONValue] = [
            .double(1e308), .double(-9.3e18), .double(9.3e18), .double(.infinity), .double(.nan), .double(0.5),
            .string("1e308"), .string("99999999999999999999"), .string("nan"), .bigInteger("99999999999999999999"),
        ]
        for value in hostile {
            #expect(value.integerValue == nil, "\(value)")
        }
        #expect(JSONValue.string(" 42 ").integerValue == 42)
        #expect(JSONValue.double(4e15).integerValue == 4_000_000_000_000_000)
        #expect(String(decoding: JSONWriter.bytes(.double(.infinity)), as: UTF8.self) == "null", "never a non-JSON inf")
    }
}
