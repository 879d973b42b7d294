import Testing

@testable import BrokerServer

@Suite struct ConnectionStateMachineTests {
    typealias Limits = ConnectionStateMachine.Limits

    static func limits(_ change: (inout Limits) -> Void) -> Limits {
        var limits = Limits()
        change(&limits)
        return limits
    }

    @Test func fastLinesAreAnsweredAtOnceAndKeepReading() {
        var connection = ConnectionHarness()
        connection.send("f1\nf2\n")
        #expect(connection.receivedLines == ["R:f1", "R:f2"])
        #expect(connection.fastAnswers == 2)
        #expect(connection.interest == .readable)
        #expect(connection.machine.heldBytes == 0)
    }

    @Test func linesBehindAGeneralLineWaitAndRepliesKeepRequestOrder() {
        var connection = ConnectionHarness()
        connection.send("g1\nf2\ng3\nf4\n")
        #expect(connection.dispatched == [Array("g1".utf8)])
        #expect(connection.received.isEmpty)
        connection.reply()
        // f2 was queued behind g1, so the general path answers it too, in order.
        #expect(connection.receivedLines == ["R:g1"])
        #expect(connection.dispatched == [Array("f2".utf8)])
        connection.reply()
        connection.reply()
        connection.reply()
        #expect(connection.receivedLines == ["R:g1", "R:f2", "R:g3", "R:f4"])
        // With nothing waiting any more, the fast path answers again.
        connection.send("f5\n")
        #expect(connection.receivedLines.last == "R:f5")
        #expect(connection.fastAnswers == 1)
    }

    @Test func aNotificationOwesNothingAndLetsTheNextLineGo() {
        var connection = ConnectionHarness()
        connection.send("g1\ng2\n")
        connection.reply(notification: true)
        #expect(connection.received.isEmpty)
        #expect(connection.dispatched == [Array("g2".utf8)])
    }

    @Test func partialWritesWaitForWritableAndThenFinish() {
        var connection = ConnectionHarness(window: 3)
        connection.send("f1\n")
        // "R:f1\n" is 5 bytes: 3 went out, the next send would block.
        #expect(connection.received.count == 3)
        #expect(connection.interest == [.readable, .writable])
        connection.writable(window: nil)
        #expect(connection.receivedLines == ["R:f1"])
        #expect(connection.interest == .readable)
    }

    @Test func unreadRepliesPastTheHighWaterMarkStopReadingAndDispatchUntilTheLowWaterMark() {
        let limits = Self.limits {
            $0.highWaterMark = 20
            $0.lowWaterMark = 5
        }
        var connection = ConnectionHarness(limits: limits, window: 0)
        connection.send("f-aaaaaaaaaa\nf-bbbbbbbbbb\ng1\n")
        #expect(connection.machine.unsentOutput > 20)
        #expect(connection.interest == .writable)
        #expect(connection.dispatched.isEmpty, "nothing is dispatched while replies wait unread")
        #expect(!connection.machine.isReading)
        connection.writable(window: 20)
        #expect(connection.machine.unsentOutput > 5)
        #expect(connection.dispatched.isEmpty)
        connection.writable(window: nil)
        #expect(connection.dispatched == [Array("g1".utf8)])
        #expect(connection.interest == .readable)
    }

    @Test func repliesLeftUnreadCloseTheConnectionAfterTheStallTimeout() {
        let limits = Self.limits {
            $0.highWaterMark = 4
            $0.lowWaterMark = 2
            $0.stalledWriteTimeout = 30
        }
        var connection = ConnectionHarness(limits: limits, window: 0)
        connection.send("f1\n")
        connection.advance(to: 29.9)
        #expect(!connection.isClosed)
        connection.advance(to: 30)
        #expect(connection.closes == [.stalled])
    }

    @Test func theLineCapLeavesExtraLinesInTheSplitterAndStopsReading() {
        let limits = Self.limits { $0.maximumQueuedLines = 3 }
        var connection = ConnectionHarness(limits: limits)
        connection.send((1...10).map { "g\($0)\n" }.joined())
        // One line with the general path, two queued, seven kept in the splitter.
        #expect(connection.dispatched.count == 1)
        #expect(!connection.machine.isReading)
        #expect(!connection.interest.contains(.readable))
        for _ in 1...10 { connection.reply() }
        #expect(connection.receivedLines == (1...10).map { "R:g\($0)" })
        #expect(connection.interest == .readable)
        #expect(connection.machine.heldBytes == 0)
    }

    @Test func theQueuedBytesCapStopsReadingToo() {
        let limits = Self.limits { $0.maximumQueuedBytes = 10 }
        var connection = ConnectionHarness(limits: limits)
        connection.send("g-aaaaaaaa\ng-bbbbbbbb\ng-cccccccc\ng-dddddddd\n")
        #expect(!connection.machine.isReading)
        for _ in 1...4 { connection.reply() }
        #expect(connection.receivedLines.count == 4)
        #expect(connection.machine.isReading)
    }

    @Test func anOverLongLineIsAnsweredAfterEarlierRepliesAndCloses() {
        let limits = Self.limits { $0.maximumLineLength = 8 }
        var connection = ConnectionHarness(limits: limits)
        connection.send("g1\nf2\n" + String(repeating: "x", count: 9) + "\nf3\n")
        #expect(!connection.isClosed)
        connection.reply()
        connection.reply()
        #expect(connection.receivedLines.count == 3)
        #expect(connection.receivedLines[0...1] == ["R:g1", "R:f2"])
        #expect(connection.receivedLines[2].contains("-32600"))
        #expect(connection.closes == [.finished])
    }

    @Test func anOverLongLineWithoutANewlineIsRefusedBeforeItIsBufferedWhole() {
        let limits = Self.limits { $0.maximumLineLength = 8 }
        var connection = ConnectionHarness(limits: limits)
        connection.send("12345")
        connection.send("67890")
        #expect(connection.receivedLines.count == 1)
        #expect(connection.receivedLines[0].contains("-32600"))
        #expect(connection.closes == [.finished])
    }

    @Test func halfCloseStillAnswersWhatWasSent() {
        var connection = ConnectionHarness()
        connection.send("g1\nf2\n")
        connection.endInput()
        #expect(!connection.isClosed)
        connection.reply()
        #expect(!connection.isClosed)
        connection.reply()
        #expect(connection.receivedLines == ["R:g1", "R:f2"])
        #expect(connection.closes == [.finished])
    }

    @Test func halfCloseDropsAPartialLine() {
        var connection = ConnectionHarness()
        connection.send("f1\nf2")
        connection.endInput()
        #expect(connection.receivedLines == ["R:f1"])
        #expect(connection.closes == [.finished])
        #expect(connection.budget.heldBytes == 0)
    }

    @Test func aPeerThatIsGoneIsClosedAtOnce() {
        var connection = ConnectionHarness()
        connection.send("g1\n")
        connection.peerGone()
        #expect(connection.closes == [.peerGone])
    }

    @Test func idleConnectionsCloseButNotWhileWorkIsInFlight() {
        let limits = Self.limits { $0.idleTimeout = 100 }
        var connection = ConnectionHarness(limits: limits)
        connection.send("g1\n")
        connection.advance(to: 150)
        #expect(!connection.isClosed, "a slow general-path call is not idleness")
        connection.reply()
        connection.advance(to: 249)
        #expect(!connection.isClosed)
        connection.advance(to: 250)
        #expect(connection.closes == [.idle])
    }

    @Test func aPartialLineMustBeFinishedInTime() {
        let limits = Self.limits {
            $0.partialLineTimeout = 30
            $0.idleTimeout = 1000
        }
        var connection = ConnectionHarness(limits: limits)
        connection.advance(to: 10)
        connection.send("{\"jsonrpc\"")
        connection.advance(to: 39)
        connection.send(":\"2.0\"")
        #expect(!connection.isClosed, "more bytes of the same line do not restart the clock, but it has not run out")
        connection.advance(to: 40)
        #expect(connection.closes == [.partialLineTimedOut])
    }

    @Test func finishingTheLineStopsThePartialLineClock() {
        let limits = Self.limits { $0.partialLineTimeout = 30 }
        var connection = ConnectionHarness(limits: limits)
        connection.send("f1")
        connection.advance(to: 20)
        connection.send("\n")
        connection.advance(to: 60)
        #expect(!connection.isClosed)
    }

    @Test func timeNotReadingDoesNotCountAgainstAPartialLine() {
        let limits = Self.limits {
            $0.partialLineTimeout = 30
            $0.maximumQueuedLines = 1
        }
        var connection = ConnectionHarness(limits: limits)
        connection.send("g1\ng2\ng3")
        #expect(!connection.machine.isReading)
        connection.advance(to: 100)
        #expect(!connection.isClosed)
        connection.reply()
        connection.reply()
        #expect(connection.machine.isReading)
        connection.advance(to: 129)
        #expect(!connection.isClosed)
        connection.advance(to: 130)
        #expect(connection.closes == [.partialLineTimedOut])
    }

    @Test func drainShutsDownInputOnceAndReregisters() {
        var connection = ConnectionHarness()
        connection.send("g1\n")
        connection.drain()
        connection.drain()
        #expect(connection.inputShutDowns == 1)
        connection.reply()
        #expect(connection.receivedLines == ["R:g1"])
        #expect(!connection.isClosed, "input is read until the end the shutdown reports")
        connection.endInput()
        #expect(connection.closes == [.finished])
    }

    @Test func requestBytesPastTheSharedBudgetAreRefused() {
        var first = ConnectionHarness(budgetLimit: 20)
        first.send("0123456789")
        #expect(first.budget.heldBytes == 10)
        // A second connection sharing the budget.
        var second = first
        second.machine = ConnectionStateMachine(limits: Limits(), budget: first.budget, uid: 1001, now: 0)
        second.send("0123456789abc")
        #expect(second.receivedLines.count == 1)
        #expect(second.receivedLines[0].contains("-32603"))
        #expect(second.closes == [.finished])
        #expect(first.budget.heldBytes == 10, "the refused connection gave its bytes back")
        first.peerGone()
        #expect(first.budget.heldBytes == 0)
    }

    @Test func closeIsReportedExactlyOnce() {
        var connection = ConnectionHarness()
        connection.peerGone()
        connection.peerGone()
        connection.send("f1\n")
        connection.advance(to: 1000)
        connection.endInput()
        #expect(connection.closes == [.peerGone])
        #expect(connection.machine.nextAction(now: 2000) == .none)
    }

    @Test func aClientStreamingRequestsIsNotTakenForAnUnfinishedLine() {
        let limits = Self.limits {
            $0.partialLineTimeout = 30
            $0.idleTimeout = 1000
        }
        var connection = ConnectionHarness(limits: limits)
        // Every read ends in the middle of a line, but every read completes one too.
        connection.send("f1\nf")
        connection.advance(to: 20)
        connection.send("2\nf")
        connection.advance(to: 40)
        connection.send("3\nf")
        connection.advance(to: 60)
        #expect(!connection.isClosed)
        #expect(connection.receivedLines == ["R:f1", "R:f2", "R:f3"])
        connection.advance(to: 90)
        #expect(connection.closes == [.partialLineTimedOut], "the last line, begun at 40, was never finished")
    }

    @Test func repliesOwedButNeverTakenCloseTheConnectionEvenBelowTheHighWaterMark() {
        let limits = Self.limits { $0.stalledWriteTimeout = 30 }
        var connection = ConnectionHarness(limits: limits, window: 2)
        connection.send("f1\n")
        #expect(connection.machine.unsentOutput == 3)
        connection.advance(to: 29)
        #expect(!connection.isClosed)
        connection.advance(to: 30)
        #expect(connection.closes == [.stalled])
    }

    @Test func aSlowButSteadyReaderIsNotTakenForAStalledOne() {
        let limits = Self.limits {
            $0.stalledWriteTimeout = 30
            $0.highWaterMark = 4
            $0.lowWaterMark = 2
        }
        var connection = ConnectionHarness(limits: limits, window: 1)
        connection.send("f-long-reply\n")
        for second in stride(from: 20.0, through: 200, by: 20) {
            connection.advance(to: second)
            connection.writable(window: 1)
        }
        #expect(!connection.isClosed, "one byte every 20 s is progress")
    }

    @Test func closingAtOnceGivesTheBudgetBack() {
        var connection = ConnectionHarness(budgetLimit: 100)
        connection.send("partial")
        #expect(connection.budget.heldBytes == 7)
        let closed = connection.machine.closeNow()
        let closedAgain = connection.machine.closeNow()
        #expect(closed && !closedAgain)
        #expect(connection.budget.heldBytes == 0)
        let next = connection.machine.nextAction(now: 0)
        #expect(next == .none)
    }

    @Test func oneUIDCannotTakeTheWholeBudgetAndTheOwnerIsNotCounted() {
        let budget = RequestBytesBudget(limit: 100, limitPerUID: 40)
        var first = ConnectionStateMachine(limits: Limits(), budget: budget, uid: 5000, now: 0)
        var second = ConnectionStateMachine(limits: Limits(), budget: budget, uid: 5000, now: 0)
        var other = ConnectionStateMachine(limits: Limits(), budget: budget, uid: 6000, now: 0)
        var owner = ConnectionStateMachine(limits: Limits(), budget: nil, uid: 0, now: 0)
        func feed(_ machine: inout ConnectionStateMachine, _ count: Int) -> ConnectionStateMachine.Action {
            Array(repeating: UInt8(ascii: "x"), count: count).withUnsafeBytes { machine.received($0, now: 0) { _, _ in false } }
            var last = ConnectionStateMachine.Action.none
            while true {
                let action = machine.nextAction(now: 0)
                if action == .none { return last }
                last = action
                if case .close = action { return last }
                if action == .send { machine.sent(machine.unsentOutput, now: 0) }
            }
        }
        _ = feed(&first, 30)
        #expect(!first.isClosed && budget.heldBytes == 30)
        #expect(feed(&second, 30) == .close(.finished), "uid 5000 would hold 60 of its 40")
        #expect(budget.heldBytes == 30)
        _ = feed(&other, 40)
        #expect(!other.isClosed && budget.heldBytes == 70)
        _ = feed(&owner, 500)
        #expect(!owner.isClosed && budget.heldBytes == 70, "the owner's bytes are not the budget's")
    }

    @Test func oneUIDsConnectionsShareTheGeneralPathGate() {
        let gate = GeneralPathGate(maximumLinesInFlight: 1, maximumUnreadBytes: 1 << 20)
        var first = ConnectionHarness(gate: gate)
        var second = ConnectionHarness(gate: gate)
        first.send("g1\n")
        second.send("g2\n")
        #expect(first.dispatched.count == 1 && second.dispatched.isEmpty, "one line in flight for the uid")
        first.reply()
        #expect(second.dispatched.isEmpty, "held back until its next event")
        second.advance(to: 1)
        #expect(second.dispatched == [Array("g2".utf8)])
        second.reply()
        #expect(gate.counts(for: 1000) == (0, 0))
    }

    @Test func unreadRepliesOfOneConnectionHoldBackTheUIDsOthers() {
        let gate = GeneralPathGate(maximumLinesInFlight: 10, maximumUnreadBytes: 5)
        var reader = ConnectionHarness(gate: gate, window: 0)
        var other = ConnectionHarness(gate: gate)
        reader.send("g1\n")
        reader.reply()
        #expect(gate.counts(for: 1000).unreadBytes == 5, "R:g1 waits unread")
        other.send("g2\n")
        #expect(other.dispatched.isEmpty)
        reader.writable(window: nil)
        #expect(gate.counts(for: 1000).unreadBytes == 0)
        other.advance(to: 1)
        #expect(other.dispatched.count == 1)
    }

    @Test func closingGivesTheGateBack() {
        let gate = GeneralPathGate(maximumLinesInFlight: 1, maximumUnreadBytes: 4)
        var connection = ConnectionHarness(gate: gate, window: 0)
        connection.send("g1\ng2\n")
        connection.reply()
        #expect(gate.counts(for: 1000).linesInFlight == 0 && gate.counts(for: 1000).unreadBytes == 5)
        connection.advance(to: 1)
        #expect(connection.dispatched.isEmpty, "its own unread reply holds the uid at the limit")
        connection.peerGone()
        #expect(gate.counts(for: 1000) == (0, 0))
        var inFlight = ConnectionHarness(gate: gate)
        inFlight.send("g3\n")
        #expect(gate.counts(for: 1000).linesInFlight == 1)
        inFlight.peerGone()
        #expect(gate.counts(for: 1000).linesInFlight == 0, "a line whose connection closed is no longer in flight")
    }
}
