import Testing

@testable import BrokerServer

/// The load generator's compact request table gives back every line exactly.
@Suite struct RequestLinesTests {
    @Test(arguments: [
        ["{\"tenant\":\"t1\"}\n", "{\"tenant\":\"t22\"}\n", "{\"tenant\":\"t333\"}\n"],
        ["aba", "aa"],
        ["ab", "abb", "b"],
        ["same\n", "same\n"],
        ["only one line\n"],
        ["", "x"],
    ])
    func everyLineComesBackAsItWas(_ texts: [String]) {
        let lines = texts.map { Array($0.utf8) }
        let table = LoadGenerator.RequestLines(lines)
        #expect(table.count == lines.count)
        var line: [UInt8] = Array("left over from before".utf8)
        for index in lines.indices.reversed() + lines.indices {
            table.assemble(index, into: &line)
            #expect(line == lines[index], "line \(index)")
        }
    }
}
