@testable import BrokerServer

/// Drives a `ConnectionStateMachine` the way the socket loop does, against a pretend peer whose
/// socket takes `window` more bytes before a send would block, and records what the machine asked for.
///
/// The fast path answers lines starting with `f`; the general path (`reply()`) answers any line.
/// Both answer `R:<line>\n`, so the bytes the peer receives show the order replies left in.
struct ConnectionHarness {
    typealias Machine = ConnectionStateMachine

    var machine: Machine
    let budget: RequestBytesBudget
    /// Bytes the socket still takes before a send would block; nil: everything.
    var window: Int?
    var now = 0.0
    private(set) var received: [UInt8] = []
    /// Lines with the general path, oldest first (the machine hands out one at a time).
    private(set) var dispatched: [[UInt8]] = []
    private(set) var allDispatched: [[UInt8]] = []
    private(set) var interest: Machine.Interest = .readable
    private(set) var closes: [Machine.CloseReason] = []
    private(set) var inputShutDowns = 0
    private(set) var fastAnswers = 0

    init(limits: Machine.Limits = Machine.Limits(), budgetLimit: Int = 1 << 30, gate: GeneralPathGate? = nil, window: Int? = nil) {
        self.budget = RequestBytesBudget(limit: budgetLimit, limitPerUID: budgetLimit)
        self.machine = Machine(limits: limits, budget: self.budget, gate: gate, uid: 1000, now: 0)
        self.window = window
    }

    static func answer(_ line: UnsafeRawBufferPointer) -> [UInt8] {
        Array("R:".utf8) + Array(line) + [UInt8(ascii: "\n")]
    }

    var receivedLines: [String] {
        String(decoding: self.received, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
    }

    var isClosed: Bool { !self.closes.isEmpty }

    // MARK: Events, each followed by the actions it leads to

    mutating func send(_ text: String) {
        let now = self.now
        self.answeringFast { machine, answerFast in
            Array(text.utf8).withUnsafeBytes { machine.received($0, now: now, answerFast: answerFast) }
        }
    }

    /// The general path answers the line it has (`nil` reply: a notification).
    mutating func reply(notification: Bool = false) {
        let line = self.dispatched.removeFirst()
        let now = self.now
        self.answeringFast { machine, answerFast in
            machine.replied(notification ? nil : line.withUnsafeBytes(Self.answer), now: now, answerFast: answerFast)
        }
    }

    /// Runs `event` with the pretend fast path (lines starting with `f`), then settles.
    private mutating func answeringFast(_ event: (inout Machine, Machine.FastAnswer) -> Void) {
        var fast = 0
        event(&self.machine) { line, output in
            guard line.first == UInt8(ascii: "f") else { return false }
            output.append(contentsOf: Self.answer(line))
            fast += 1
            return true
        }
        self.fastAnswers += fast
        self.settle()
    }

    mutating func endInput() {
        self.machine.inputEnded()
        self.settle()
    }

    mutating func peerGone() {
        self.machine.peerGone()
        self.settle()
    }

    mutating func writable(window: Int? = nil) {
        self.window = window
        self.machine.writable()
        self.settle()
    }

    mutating func advance(to time: Double) {
        self.now = time
        self.machine.tick(now: time)
        self.settle()
    }

    mutating func drain() {
        self.machine.drain()
        self.settle()
    }

    /// Carries out actions until the machine has none, as the loop does.
    mutating func settle() {
        while true {
            let action = self.machine.nextAction(now: self.now)
            switch action {
            case .none:
                return
            case .send:
                let accepted = self.machine.withUnsentOutput { bytes -> Int in
                    let count = min(bytes.count, self.window ?? bytes.count)
                    self.received.append(contentsOf: bytes[..<count])
                    return count
                }
                self.window = self.window.map { $0 - accepted }
                if accepted > 0 {
                    self.machine.sent(accepted, now: self.now)
                } else {
                    self.machine.sendWouldBlock()
                }
            case .dispatch(let line):
                precondition(self.dispatched.isEmpty, "a second line went to the general path before the first was answered")
                self.dispatched.append(line)
                self.allDispatched.append(line)
            case .watch(let interest):
                self.interest = interest
            case .shutDownInput:
                self.inputShutDowns += 1
            case .close(let reason):
                self.closes.append(reason)
            }
        }
    }
}
