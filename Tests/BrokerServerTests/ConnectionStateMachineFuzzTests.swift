import Testing

@testable import BrokerServer

/// Random event sequences against `ConnectionStateMachine`'s invariants: replies leave in request
/// order, memory stays bounded, the shared budget is given back, and a connection closes exactly
/// once. Seeded, so a failure names the sequence that reproduces it.
@Suite struct ConnectionStateMachineFuzzTests {
    /// SplitMix64: small, fast, and the same sequence for the same seed on every platform.
    struct SeededGenerator: RandomNumberGenerator {
        var state: UInt64

        mutating func next() -> UInt64 {
            self.state &+= 0x9E37_79B9_7F4A_7C15
            var z = self.state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let limits: ConnectionStateMachine.Limits = {
        var limits = ConnectionStateMachine.Limits()
        limits.maximumLineLength = 24
        limits.highWaterMark = 40
        limits.lowWaterMark = 10
        limits.maximumQueuedLines = 3
        limits.maximumQueuedBytes = 30
        limits.stalledWriteTimeout = 30
        limits.partialLineTimeout = 20
        limits.idleTimeout = 60
        return limits
    }()
    static let largestChunk = 40

    @Test func randomEventSequencesKeepTheInvariants() {
        for seed in 0..<400 { Self.run(seed: seed) }
    }

    static func run(seed: Int) {
        var random = SeededGenerator(state: UInt64(seed))
        let limits = Self.limits
        // Requests: fast (f), general (g) and notification (n) lines, now and then one too long.
        var lines: [String] = []
        for index in 0..<Int.random(in: 1...30, using: &random) {
            switch Int.random(in: 0..<20, using: &random) {
            case 0: lines.append(String(repeating: "x", count: limits.maximumLineLength + 1))
            case 1...8: lines.append("f\(index)")
            case 9...10: lines.append("n\(index)")
            default: lines.append("g\(index)-" + String(repeating: "p", count: Int.random(in: 0...12, using: &random)))
            }
        }
        var stream = Array(lines.map { $0 + "\n" }.joined().utf8)
        if Bool.random(using: &random) { stream += Array("g-unfinished".utf8) }
        let expected = lines.prefix { $0.count <= limits.maximumLineLength }.filter { !$0.hasPrefix("n") }.map { "R:" + $0 }

        let gate = GeneralPathGate(maximumLinesInFlight: 1, maximumUnreadBytes: 1 << 20)
        var connection = ConnectionHarness(limits: limits, budgetLimit: 1 << 20, gate: gate, window: nil)
        var offset = 0
        var inputEnded = false
        for _ in 0..<600 where !connection.isClosed {
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<40 where offset < stream.count && connection.machine.isReading:
                let count = min(stream.count - offset, Int.random(in: 1...Self.largestChunk, using: &random))
                connection.send(String(decoding: stream[offset..<offset + count], as: UTF8.self))
                offset += count
            case 40..<65 where !connection.dispatched.isEmpty:
                connection.reply(notification: connection.dispatched[0].first == UInt8(ascii: "n"))
            case 65..<80:
                connection.writable(window: Bool.random(using: &random) ? nil : Int.random(in: 0...50, using: &random))
            case 80..<92:
                connection.advance(to: connection.now + Double.random(in: 0...25, using: &random))
            case 92..<95 where offset >= stream.count && !inputEnded:
                connection.endInput()
                inputEnded = true
            case 95:
                connection.drain()
            case 96 where seed % 7 == 0:
                connection.peerGone()
            default:
                break
            }
            Self.checkInvariants(connection, expected: expected, limits: limits, seed: seed)
        }
        // Wind down: the peer reads everything, the general path answers, the input ends.
        while !connection.isClosed {
            if !connection.dispatched.isEmpty {
                connection.reply(notification: connection.dispatched[0].first == UInt8(ascii: "n"))
            } else if offset < stream.count, connection.machine.isReading {
                let count = min(stream.count - offset, Self.largestChunk)
                connection.send(String(decoding: stream[offset..<offset + count], as: UTF8.self))
                offset += count
            } else if connection.window != nil || connection.machine.unsentOutput > 0 {
                connection.writable(window: nil)
            } else {
                connection.endInput()
            }
            Self.checkInvariants(connection, expected: expected, limits: limits, seed: seed)
        }
        #expect(connection.closes.count == 1, "seed \(seed)")
        #expect(connection.budget.heldBytes == 0, "seed \(seed): the budget is given back on close")
        #expect(gate.counts(for: 1000) == (0, 0), "seed \(seed): the gate is given back on close")
        if connection.closes == [.finished], lines.allSatisfy({ $0.count <= limits.maximumLineLength }) {
            #expect(connection.receivedLines == expected, "seed \(seed): every request answered, in order")
        }
    }

    static func checkInvariants(_ connection: ConnectionHarness, expected: [String], limits: ConnectionStateMachine.Limits, seed: Int) {
        var replies = connection.receivedLines
        if let last = replies.last, last.contains("\"error\"") { replies.removeLast() }
        #expect(replies.count <= expected.count && Array(expected.prefix(replies.count)) == replies, "seed \(seed): replies out of order")
        #expect(connection.closes.count <= 1, "seed \(seed): closed more than once")
        if !connection.isClosed {
            let heldBound = limits.maximumLineLength + Self.largestChunk + limits.maximumQueuedBytes + limits.maximumLineLength
            #expect(connection.machine.heldBytes <= heldBound, "seed \(seed): request bytes held")
            #expect(connection.budget.heldBytes == connection.machine.heldBytes, "seed \(seed): budget out of step")
            let outputBound = limits.highWaterMark + 3 * Self.largestChunk + limits.maximumLineLength + 200
            #expect(connection.machine.unsentOutput <= outputBound, "seed \(seed): unread replies")
            #expect(connection.dispatched.count <= 1)
        }
    }
}
