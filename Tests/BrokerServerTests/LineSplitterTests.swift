import Testing

@testable import BrokerServer

@Suite struct LineSplitterTests {
    /// Splits `chunks` in order; `takeAtMost` lines are taken before each pause, after which the
    /// kept lines are resumed until none are left.
    static func lines(_ chunks: [String], maximum: Int = 64, takeAtMost: Int = .max) -> [String] {
        var splitter = LineSplitter(maximumLength: maximum)
        var out: [String] = []
        for chunk in chunks {
            var budget = takeAtMost
            let take = { (line: UnsafeRawBufferPointer) -> Bool in
                out.append(String(decoding: line, as: UTF8.self))
                budget -= 1
                return budget > 0
            }
            var outcome = Array(chunk.utf8).withUnsafeBytes { splitter.split($0, take) }
            while outcome == .paused {
                budget = takeAtMost
                outcome = splitter.resume(take)
            }
            guard outcome == .consumed else {
                out.append("<too long>")
                break
            }
        }
        return out
    }

    @Test func splitsAcrossReadsAndDropsCarriageReturns() {
        #expect(Self.lines(["a\nb", "c\r\n", "\n", "d"]) == ["a", "bc", ""])
        #expect(Self.lines(["abc", "def", "\nxyz\n"]) == ["abcdef", "xyz"])
    }

    @Test func handsOutLinesInOrderWhetherWholeInOneReadOrCarried() {
        #expect(Self.lines(["ab", "c\nd", "e\nf\ng\n"]) == ["abc", "de", "f", "g"])
        #expect(Self.lines(["x\n", "", "y", "\n"]) == ["x", "y"])
    }

    @Test func refusesOverlongLinesWithOrWithoutANewline() {
        #expect(Self.lines([String(repeating: "x", count: 65) + "\n"]) == ["<too long>"])
        #expect(Self.lines([String(repeating: "x", count: 40), String(repeating: "x", count: 40)]) == ["<too long>"])
        #expect(Self.lines([String(repeating: "x", count: 64) + "\nok\n"]) == [String(repeating: "x", count: 64), "ok"])
    }

    @Test func aPausedTakerGetsTheKeptLinesLaterInOrder() {
        #expect(Self.lines(["a\nb\nc\nd\ne"], takeAtMost: 2) == ["a", "b", "c", "d"])
        #expect(Self.lines(["a\nb\nc\nd\ne", "f\ng\n"], takeAtMost: 1) == ["a", "b", "c", "d", "ef", "g"])
        #expect(Self.lines(["ab", "c\nd\ne\n"], takeAtMost: 1) == ["abc", "d", "e"])
    }

    @Test func keptLinesAreHeldAndCountedUntilTaken() {
        var splitter = LineSplitter(maximumLength: 64)
        var taken: [String] = []
        let outcome = Array("one\ntwo\nthr".utf8).withUnsafeBytes { bytes in
            splitter.split(bytes) { line in
                taken.append(String(decoding: line, as: UTF8.self))
                return false
            }
        }
        #expect(outcome == .paused)
        #expect(taken == ["one"])
        #expect(splitter.isPaused && !splitter.holdsPartialLine)
        #expect(splitter.heldBytes == "two\nthr".utf8.count)
        #expect(splitter.resume { taken.append(String(decoding: $0, as: UTF8.self)); return true } == .consumed)
        #expect(taken == ["one", "two"])
        #expect(!splitter.isPaused && splitter.holdsPartialLine && splitter.heldBytes == 3)
    }

    @Test func anOverLongKeptLineIsRefusedOnResume() {
        #expect(Self.lines(["a\n" + String(repeating: "x", count: 65) + "\n"], takeAtMost: 1) == ["a", "<too long>"])
    }
}
