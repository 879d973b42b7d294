import BrokerCore
import NIOCore

/// The protocol of one JSON-RPC client connection, without a socket.
///
/// The socket loop reports events (bytes read, end of input, peer gone, writable, bytes sent, a
/// general-path reply, a clock tick, drain) and then asks `nextAction(now:)` what to do until it
/// answers `.none`: send the pending output, hand a line to the general path, change the epoll
/// interest, shut down input, or close. The loop only makes the system calls. So every rule about
/// bounds, order and deadlines lives here, and is tested without sockets (in the style of
/// postgres-nio's `ConnectionStateMachine`).
///
/// Rules:
/// - Replies leave in request order. A line is answered by the fast path (the caller's closure) only
///   while no earlier line waits for the general path; otherwise it queues behind them.
/// - The general path has at most one line of this connection at a time, and gets the next only
///   while unread replies are below the high-water mark, so a client that does not read cannot make
///   the broker build replies for it; and only while the uid's `GeneralPathGate` lets it, so neither
///   can a user with many such connections.
/// - At most `maximumQueuedLines` lines and about `maximumQueuedBytes` bytes wait in the queue;
///   beyond that the splitter keeps the rest and the socket is not read.
/// - Deadlines: replies owed but none taken by the peer for `stalledWriteTimeout`, a partial line not
///   completed while being read (`partialLineTimeout`, counted from the last completed line), and
///   nothing at all happening (`idleTimeout`) each close the connection.
/// - Every byte of request data held (partial lines, kept lines, queued lines) is counted in a budget
///   shared by the connections of callers other than the broker's owner and root (nil `budget`);
///   a connection that would pass it is answered with an error and closed.
/// - `.close` is returned exactly once, and nothing after it.
struct ConnectionStateMachine {
    struct Limits: Sendable, Equatable {
        var maximumLineLength = 1 << 20
        /// While replies pile up unread past this many bytes, nothing more is read or dispatched…
        var highWaterMark = 256 << 10
        /// …until they drain to this.
        var lowWaterMark = 32 << 10
        var maximumQueuedLines = 128
        var maximumQueuedBytes = 1 << 20
        var stalledWriteTimeout = 30.0
        var partialLineTimeout = 30.0
        var idleTimeout = 300.0

        init() {}
    }

    struct Interest: OptionSet, Equatable {
        let rawValue: UInt8
        static let readable = Interest(rawValue: 1)
        static let writable = Interest(rawValue: 2)
    }

    enum CloseReason: Equatable {
        /// Input ended and everything owed was sent.
        case finished
        /// The peer can no longer receive.
        case peerGone
        /// A send failed or the loop could not watch the socket.
        case failed
        case stalled
        case partialLineTimedOut
        case idle
        /// The loop stopped (end of a drain) with the connection still open (`closeNow`).
        case drained
    }

    enum Action: Equatable {
        case none
        /// Send `unsentOutput`, then report `sent(_:now:)`, `sendWouldBlock()` or `sendFailed()`.
        case send
        /// Hand this line to the general path; its reply comes back through `replied(_:now:answerFast:)`.
        case dispatch([UInt8])
        case watch(Interest)
        /// Stop taking requests (graceful drain); what was already sent is still answered.
        case shutDownInput
        case close(CloseReason)
    }

    /// The fast path: appends a reply for `line` to the output and returns true, or returns false
    /// (appending nothing) to leave the line to the general path.
    typealias FastAnswer = (_ line: UnsafeRawBufferPointer, _ output: inout [UInt8]) -> Bool

    let limits: Limits
    private let budget: RequestBytesBudget?
    private let gate: GeneralPathGate?
    private let uid: UInt32
    /// Unread reply bytes this connection has counted in `gate`.
    private var countedUnread = 0
    private var splitter: LineSplitter
    private var output: [UInt8] = []
    private var written = 0
    private var pending: PendingLines
    private var inputOpen = true
    /// An error reply owed once every earlier line is answered; input is closed by then.
    private var owedError: RPCError?
    private var sendBlocked = false
    private var registered = Interest.readable
    private var reregister = false
    private var drainRequested = false
    private var inputShutDown = false
    private var pendingClose: CloseReason?
    private(set) var isClosed = false
    /// Bytes of request data this connection has counted in `budget`.
    private var counted = 0
    /// When unread replies went past the high-water mark; nil once they drain to the low-water mark.
    private var stalledSince: Double?
    /// Since when replies have been owed with none taken by the peer; nil while nothing is owed.
    private var owedSince: Double?
    private var partialSince: Double?
    private var lastActivity: Double

    private static let keptOutputCapacity = 64 << 10

    /// - Parameters:
    ///   - budget: shared by the connections of ordinary callers; nil for the broker's owner and
    ///     root, whose connections are bounded by the slots kept for them.
    ///   - gate: likewise, nil for the owner and root.
    init(limits: Limits, budget: RequestBytesBudget?, gate: GeneralPathGate? = nil, uid: UInt32, now: Double) {
        self.limits = limits
        self.budget = budget
        self.gate = gate
        self.uid = uid
        self.splitter = LineSplitter(maximumLength: limits.maximumLineLength)
        self.pending = PendingLines(limits: limits)
        self.lastActivity = now
    }

    // MARK: What the loop reads

    /// True while the loop should read from the socket when it is readable.
    var isReading: Bool { self.registered.contains(.readable) && self.wantsInput }

    var unsentOutput: Int { self.output.count - self.written }

    /// Calls `body` with the bytes waiting to be sent.
    func withUnsentOutput<Result>(_ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        self.output.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[self.written...])) }
    }

    /// Request bytes held: partial and kept lines, and lines queued for the general path.
    var heldBytes: Int { self.splitter.heldBytes + self.pending.bytes }

    // MARK: Events

    mutating func received(_ bytes: UnsafeRawBufferPointer, now: Double, answerFast: FastAnswer) {
        guard !self.isClosed, self.inputOpen else { return }
        self.lastActivity = now
        var completed = 0
        let outcome = self.splitter.split(bytes) { line in
            completed += 1
            return self.pending.take(line, output: &self.output, answerFast: answerFast)
        }
        self.afterSplitting(outcome, completedLines: completed, now: now)
    }

    /// The peer sent its last byte (or reading failed): lines already taken are still answered.
    mutating func inputEnded() {
        self.inputOpen = false
        if self.splitter.holdsPartialLine { self.splitter.discard() }
        self.partialSince = nil
        self.recount()
    }

    /// The peer can no longer receive: nothing more is owed.
    mutating func peerGone() {
        guard !self.isClosed else { return }
        self.inputOpen = false
        self.pendingClose = self.pendingClose ?? .peerGone
    }

    mutating func writable() {
        self.sendBlocked = false
    }

    mutating func sent(_ count: Int, now: Double) {
        self.written += count
        self.lastActivity = now
        if count > 0 { self.owedSince = now }
        let unsent = self.unsentOutput
        if unsent == 0 {
            self.output.removeAll(keepingCapacity: self.output.capacity <= Self.keptOutputCapacity)
            self.written = 0
            self.owedSince = nil
        } else if self.written >= unsent {
            self.output.removeFirst(self.written)
            self.written = 0
        }
        // Only a connection that had a general-path reply pending pays for the gate's lock here.
        if self.countedUnread > 0 { self.countUnread() }
        self.updateStall(now: now)
    }

    mutating func sendWouldBlock() {
        self.sendBlocked = true
    }

    mutating func sendFailed() {
        self.failed()
    }

    /// The loop could not do what an action asked (e.g. watch the socket).
    mutating func failed() {
        guard !self.isClosed else { return }
        self.inputOpen = false
        self.pendingClose = self.pendingClose ?? .failed
    }

    /// The general path's reply to the line it had (nil for a notification).
    mutating func replied(_ reply: [UInt8]?, now: Double, answerFast: FastAnswer) {
        guard !self.isClosed else { return }
        self.pending.withGeneralPath = false
        self.gate?.lineDone(uid: self.uid)
        self.lastActivity = now
        if let reply {
            self.output.append(contentsOf: reply)
            self.countUnread()
        }
        if self.owedSince == nil, self.unsentOutput > 0 { self.owedSince = now }
        self.updateStall(now: now)
        if self.splitter.isPaused {
            var completed = 0
            let outcome = self.splitter.resume { line in
                completed += 1
                return self.pending.take(line, output: &self.output, answerFast: answerFast)
            }
            self.afterSplitting(outcome, completedLines: completed, now: now)
        }
    }

    /// Checks the deadlines.
    mutating func tick(now: Double) {
        guard !self.isClosed, self.pendingClose == nil else { return }
        if let since = self.owedSince, now - since >= self.limits.stalledWriteTimeout {
            self.pendingClose = .stalled
        } else if let since = self.partialSince, self.isReading, now - since >= self.limits.partialLineTimeout {
            self.pendingClose = .partialLineTimedOut
        } else if self.isQuiet, now - self.lastActivity >= self.limits.idleTimeout {
            self.pendingClose = .idle
        }
    }

    /// Graceful drain: stop taking new requests, answer those already sent.
    mutating func drain() {
        self.drainRequested = true
    }

    // MARK: Actions

    mutating func nextAction(now: Double) -> Action {
        if self.isClosed { return .none }
        if let reason = self.pendingClose { return self.close(reason) }
        if self.drainRequested, !self.inputShutDown, self.inputOpen {
            self.inputShutDown = true
            self.reregister = true
            return .shutDownInput
        }
        if self.stalledSince == nil, self.pending.canDispatch, self.gate?.admitLine(uid: self.uid) ?? true,
            let line = self.pending.dispatchNext()
        {
            self.recount()
            return .dispatch(line)
        }
        if let error = self.owedError, self.pending.isEmpty {
            self.owedError = nil
            self.output.append(contentsOf: RPCResponse.line(RPCResponse.failure(id: .null, error: error)))
            if self.owedSince == nil { self.owedSince = now }
        }
        if self.unsentOutput > 0, !self.sendBlocked { return .send }
        if !self.inputOpen, self.pending.isEmpty, self.owedError == nil,
            self.unsentOutput == 0, !self.splitter.isPaused
        {
            return self.close(.finished)
        }
        let wanted = self.wantedInterest
        if wanted != self.registered || self.reregister {
            if !self.registered.contains(.readable), wanted.contains(.readable), self.splitter.holdsPartialLine {
                // Time spent not reading (backpressure) does not count against the partial line.
                self.partialSince = now
            }
            self.registered = wanted
            self.reregister = false
            return .watch(wanted)
        }
        return .none
    }

    /// Closes at once, whatever is owed (the loop is stopping); gives back the budget. Returns false
    /// if the connection was already closed.
    mutating func closeNow() -> Bool {
        guard !self.isClosed else { return false }
        _ = self.close(.drained)
        return true
    }

    // MARK: Internals

    private var wantsInput: Bool {
        self.inputOpen && self.pendingClose == nil && self.stalledSince == nil && !self.splitter.isPaused
            && self.pending.hasRoom
    }

    private var wantedInterest: Interest {
        var interest: Interest = []
        if self.wantsInput { interest.insert(.readable) }
        if self.unsentOutput > 0 { interest.insert(.writable) }
        return interest
    }

    /// Nothing in flight, queued, held or owed: only the idle deadline applies.
    private var isQuiet: Bool {
        self.pending.isEmpty && self.unsentOutput == 0 && self.splitter.heldBytes == 0
            && self.owedError == nil
    }

    private mutating func afterSplitting(_ outcome: LineSplitter.Outcome, completedLines: Int, now: Double) {
        if outcome == .overLong {
            self.closeInput(owing: .invalidRequest("line longer than \(self.limits.maximumLineLength) bytes; closing"))
        } else if self.splitter.holdsPartialLine {
            // The partial line is a new one whenever a line was completed: a client streaming requests
            // rarely has a read end exactly at a newline.
            if self.partialSince == nil || completedLines > 0 { self.partialSince = now }
        } else {
            self.partialSince = nil
        }
        if self.owedSince == nil, self.unsentOutput > 0 { self.owedSince = now }
        self.updateStall(now: now)
        if !self.recount() {
            self.closeInput(owing: RPCError(code: RPCError.internalErrorCode, message: "the broker holds too many unanswered requests; try again later"))
            self.recount()
        }
    }

    /// Stops reading for good and drops unread input; `error` is sent after the replies owed.
    private mutating func closeInput(owing error: RPCError) {
        self.inputOpen = false
        self.splitter.discard()
        self.partialSince = nil
        self.owedError = error
    }

    private mutating func updateStall(now: Double) {
        let unsent = self.unsentOutput
        if unsent > self.limits.highWaterMark, self.stalledSince == nil {
            self.stalledSince = now
        } else if unsent <= self.limits.lowWaterMark {
            self.stalledSince = nil
        }
    }

    /// Brings this connection's share of the shared budget up to date; false when it would pass the budget.
    @discardableResult
    private mutating func recount() -> Bool {
        let held = self.heldBytes
        defer { self.counted = held }
        return self.budget?.adjust(by: held - self.counted, uid: self.uid) ?? true
    }

    /// Brings this connection's unread replies in `gate` up to date.
    private mutating func countUnread() {
        guard let gate = self.gate else { return }
        let unread = self.unsentOutput
        gate.adjustUnread(by: unread - self.countedUnread, uid: self.uid)
        self.countedUnread = unread
    }

    private mutating func close(_ reason: CloseReason) -> Action {
        if self.pending.withGeneralPath { self.gate?.lineDone(uid: self.uid) }
        self.isClosed = true
        self.inputOpen = false
        self.splitter.discard()
        self.pending.removeAll()
        self.recount()
        self.output = []
        self.written = 0
        self.countUnread()
        return .close(reason)
    }
}

/// The lines of one connection that wait for the general path, and whether it has one of them now.
private struct PendingLines {
    private let limits: ConnectionStateMachine.Limits
    private var lines = CircularBuffer<[UInt8]>()
    private(set) var bytes = 0
    var withGeneralPath = false

    init(limits: ConnectionStateMachine.Limits) {
        self.limits = limits
    }

    /// Nothing queued and nothing with the general path.
    var isEmpty: Bool { self.lines.isEmpty && !self.withGeneralPath }

    var hasRoom: Bool { self.lines.count < self.limits.maximumQueuedLines && self.bytes < self.limits.maximumQueuedBytes }

    /// Answers `line` on the fast path if nothing is ahead of it, or queues it; returns whether
    /// another line may be taken.
    mutating func take(_ line: UnsafeRawBufferPointer, output: inout [UInt8], answerFast: ConnectionStateMachine.FastAnswer) -> Bool {
        if self.isEmpty, answerFast(line, &output) { return true }
        self.lines.append(Array(line))
        self.bytes += line.count
        return self.hasRoom
    }

    /// A line waits and the general path has none of this connection's now.
    var canDispatch: Bool { !self.withGeneralPath && !self.lines.isEmpty }

    /// The next line for the general path, if it has none of this connection's now.
    mutating func dispatchNext() -> [UInt8]? {
        guard !self.withGeneralPath, let line = self.lines.popFirst() else { return nil }
        self.bytes -= line.count
        self.withGeneralPath = true
        return line
    }

    mutating func removeAll() {
        self.lines.removeAll()
        self.bytes = 0
    }
}
