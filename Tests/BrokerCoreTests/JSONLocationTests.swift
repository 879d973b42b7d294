import BrokerCore
import Testing

/// `JSONParser.parseWithLocations` and `TextLines`: how an import error finds its line and column.
@Suite struct JSONLocationTests {
    @Test func recordsWhereEachValueAndMemberNameStarts() throws {
        let text = "{\n  \"tenants\": [\n    {\"id\": \"acme\", \"n\": [1, true]}\n  ]\n}"
        let bytes = Array(text.utf8)
        let (value, root) = try JSONParser.parseWithLocations(bytes)
        #expect(value == (try JSONParser.parse(bytes)))
        #expect(root.offset == 0)
        let tenants = try #require(root.members["tenants"])
        #expect(tenants.nameOffset == 4)
        #expect(tenants.value.offset == 15)
        let tenant = try #require(tenants.value.elements.first)
        #expect(bytes[tenant.offset] == UInt8(ascii: "{"))
        let id = try #require(tenant.members["id"])
        #expect(Array(bytes[id.value.offset..<id.value.offset + 6]) == Array("\"acme\"".utf8))
        let list = try #require(tenant.members["n"]?.value.elements)
        #expect(list.map { bytes[$0.offset] } == [UInt8(ascii: "1"), UInt8(ascii: "t")])
    }

    @Test(arguments: ["{\"a\": [1, 2,]}", "[\"x\" 1]", "{\"a\":}", "nul"])
    func parseErrorsAreTheSameWithOrWithoutLocations(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONParser.parseWithLocations(Array(text.utf8)) }
        do {
            _ = try JSONParser.parse(Array(text.utf8))
        } catch {
            #expect(throws: error) { try JSONParser.parseWithLocations(Array(text.utf8)) }
        }
    }

    @Test(arguments: [
        (0, 1, 1), (3, 1, 4), (4, 2, 1), (5, 2, 2), (6, 3, 1), (9, 3, 4), (99, 3, 4),
    ])
    func offsetsBecomeLinesAndColumns(_ offset: Int, _ line: Int, _ column: Int) {
        let lines = TextLines(Array("abc\nd\nefg".utf8))
        #expect(lines.position(ofOffset: offset) == TextPosition(line: line, column: column))
    }

    /// Columns count characters, not bytes: two-, three- and four-byte UTF-8 sequences are one each.
    @Test func columnsCountUTF8CharactersNotBytes() {
        let text = "{\"é€😀\": 1}\r\n  \"ü\""
        let bytes = Array(text.utf8)
        let lines = TextLines(bytes)
        let one = bytes.firstIndex(of: UInt8(ascii: "1"))!
        #expect(lines.position(ofOffset: one) == TextPosition(line: 1, column: 9))
        let quote = bytes.lastIndex(of: UInt8(ascii: "\""))!
        #expect(lines.position(ofOffset: quote) == TextPosition(line: 2, column: 5))
        #expect("\(lines.position(ofOffset: quote))" == "2:5")
    }

    @Test func anEmptyTextIsLineOneColumnOne() {
        #expect(TextLines([]).position(ofOffset: 0) == TextPosition(line: 1, column: 1))
    }
}
