#if canImport(Glibc)
import Glibc
#endif
import BrokerCore
import CLinuxEvents
import Logging
import Synchronization

/// One thread's event loop for the JSON-RPC socket: an epoll set, the connections it owns, and an
/// inbox through which other threads hand it work (general-path replies, adopted connections,
/// shutdown). The first loop also owns the listening socket and deals connections out to all loops.
///
/// Its own lifecycle is `running`, then `draining` (no new connections; each finishes what it was
/// sent), then stopped once no connection is left or the drain deadline passes.
///
/// Each connection's protocol is a `ConnectionStateMachine`; the loop feeds it events and carries out the
/// actions it returns, so the loop itself only makes system calls.
///
/// `@unchecked Sendable`: everything but `inbox` is touched only on the loop's thread.
final class SocketLoop: @unchecked Sendable {
    enum Message: Sendable {
        case adopt(descriptor: Int32, peer: PeerCredentials)
        case reply(tag: UInt64, bytes: [UInt8]?)
        /// Stop accepting; close whatever is still open at `deadline` (monotonic seconds).
        case drain(deadline: Double)
    }

    private enum State {
        case running
        case draining(deadline: Double)
    }

    /// The inbox, and whether the loop has stopped taking messages: one lock, so a message is
    /// either taken by the running loop or refused to its sender, never stranded.
    private struct Inbox {
        var messages: [Message] = []
        var stopped = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private static let wakeTag = UInt64.max
    private static let listenerTag = UInt64.max - 1
    private static let housekeepingInterval = 1.0
    private static let readBufferSize = 64 << 10
    private static let refusalLogInterval = 60.0

    private let epoll: Epoll
    private let services: ConnectionServices
    private let inbox = Mutex(Inbox())
    private let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: readBufferSize, alignment: 16)
    private var state = State.running
    /// Connections by slot; a connection's tag is its slot plus a generation in the high 32 bits,
    /// so a reply for a closed connection never reaches the next one in its slot.
    private var slots: [ClientConnection?] = []
    /// Each slot's tag (0 when free) and descriptor, apart from `slots` so reading one does not copy
    /// a connection.
    private var tags: [UInt64] = []
    private var descriptors: [Int32] = []
    private var freeSlots: [Int] = []
    private var generation: UInt64 = 0
    private var listener: Int32?
    private var listenerPaused = false
    /// The loops this one deals accepted connections to (itself included); emptied when it stops,
    /// which breaks the cycle through itself.
    private var peers: [SocketLoop] = []
    private var nextPeer = 0
    /// When a refused connection was last logged, and how many were refused since.
    private var refusals: (loggedAt: Double, unlogged: Int) = (-.infinity, 0)
    private var lastHousekeeping: Double

    /// Connections open on this loop: every slot not free.
    private var openCount: Int { self.slots.count - self.freeSlots.count }

    init(services: ConnectionServices) throws {
        self.services = services
        self.epoll = try Epoll(wakeTag: Self.wakeTag)
        self.lastHousekeeping = services.clock.monotonicNow()
    }

    deinit {
        self.readBuffer.deallocate()
    }

    /// Makes this loop accept on `listener` and deal connections out round-robin to `loops`.
    func accept(on listener: Int32, dealingTo loops: [SocketLoop]) throws {
        try self.epoll.add(listener, interest: Epoll.readable, tag: Self.listenerTag)
        self.listener = listener
        self.peers = loops
    }

    /// Undoes `accept(on:dealingTo:)` for a loop that will never run (start-up failed): it no longer
    /// holds the loops it would have dealt to, itself included.
    func forgetPeers() {
        self.peers = []
        self.listener = nil
    }

    /// Runs the loop on a thread of its own until it stops.
    func start() throws {
        var thread = pthread_t()
        let retained = Unmanaged.passRetained(self)
        let result = pthread_create(&thread, nil, { argument in
            let loop = Unmanaged<SocketLoop>.fromOpaque(argument!).takeRetainedValue()
            loop.run()
            return nil
        }, retained.toOpaque())
        guard result == 0 else {
            retained.release()
            throw SystemCallError("pthread_create", errno: result)
        }
        pthread_detach(thread)
    }

    /// From any thread: queues a message and wakes the loop (once for messages arriving together).
    /// Returns false, queuing nothing, once the loop has stopped: an adopted descriptor is then the
    /// sender's to close.
    @discardableResult
    func post(_ message: Message) -> Bool {
        let (accepted, wasEmpty) = self.inbox.withLock { inbox in
            guard !inbox.stopped else { return (false, false) }
            inbox.messages.append(message)
            return (true, inbox.messages.count == 1)
        }
        if wasEmpty { self.epoll.wake() }
        return accepted
    }

    func waitUntilStopped() async {
        await withCheckedContinuation { continuation in
            let stopped = self.inbox.withLock { inbox in
                if !inbox.stopped { inbox.waiters.append(continuation) }
                return inbox.stopped
            }
            if stopped { continuation.resume() }
        }
    }

    private func run() {
        // One clock reading per batch of events: everything in a batch is handled at the same moment.
        var now = self.services.clock.monotonicNow()
        while true {
            if case .draining(let deadline) = self.state, self.openCount == 0 || now >= deadline { break }
            var timeout = Self.housekeepingInterval
            if case .draining(let deadline) = self.state { timeout = min(timeout, max(0, deadline - now)) }
            let ready: Int
            do {
                ready = try self.epoll.wait(timeoutMilliseconds: Int32((timeout * 1000).rounded(.up)))
            } catch {
                // Not a condition to retry: waiting again would fail again, at full speed.
                self.services.logger.critical("the socket loop cannot wait for events; closing its connections", metadata: ["error": "\(error)"])
                self.services.loopFailed()
                break
            }
            now = self.services.clock.monotonicNow()
            var served = 0
            for index in 0..<ready {
                served += self.handle(self.epoll.event(at: index), now: now)
            }
            if served > 0 { self.services.fastTokenGets.increment(by: Int64(served)) }
            if now - self.lastHousekeeping >= Self.housekeepingInterval { self.keepHouse(now: now) }
        }
        self.stop(now: now)
    }

    /// Closes everything and stops taking messages; adopted descriptors still in the inbox are closed.
    private func stop(now: Double) {
        self.closeAll(now: now)
        self.closeListener()
        self.peers = []
        let (left, waiters) = self.inbox.withLock { inbox in
            inbox.stopped = true
            let left = inbox.messages
            inbox.messages = []
            defer { inbox.waiters = [] }
            return (left, inbox.waiters)
        }
        for case .adopt(let descriptor, let peer) in left {
            close(descriptor)
            self.services.connectionClosed(peer)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns how many `token.get`s the fast path answered.
    private func handle(_ event: Epoll.Event, now: Double) -> Int {
        switch event.tag {
        case Self.wakeTag:
            self.epoll.acknowledgeWake()
            return self.takeMessages(now: now)
        case Self.listenerTag:
            self.acceptConnections(now: now)
            return 0
        default:
            guard let slot = self.slot(of: event.tag) else { return 0 }
            let served = self.slots[slot]!.handle(event, buffer: self.readBuffer, now: now, services: self.services)
            self.service(slot, now: now)
            return served
        }
    }

    /// Carries out the connection's actions until it has none left. Every access to the connection
    /// is a mutating one, in place: reading through `slots[slot]!` would copy the whole connection.
    private func service(_ slot: Int, now: Double) {
        while true {
            switch self.slots[slot]!.machine.nextAction(now: now) {
            case .none:
                return
            case .send:
                self.slots[slot]!.sendPending(now: now)
            case .dispatch(let line):
                self.slots[slot]!.dispatch(line, services: self.services, loop: self)
            case .watch(let interest):
                var events: UInt32 = 0
                if interest.contains(.readable) { events |= Epoll.readable }
                if interest.contains(.writable) { events |= Epoll.writable }
                do {
                    try self.epoll.modify(self.descriptors[slot], interest: events, tag: self.tags[slot])
                } catch {
                    self.services.logger.warning("could not watch a connection; closing it", metadata: ["error": "\(error)"])
                    self.slots[slot]!.machine.failed()
                }
            case .shutDownInput:
                shutdown(self.descriptors[slot], Int32(SHUT_RD))
            case .close(let reason):
                self.closeConnection(in: slot, reason: reason, now: now)
                return
            }
        }
    }

    private func logClose(_ reason: ConnectionStateMachine.CloseReason, peer: PeerCredentials) {
        let logger = self.services.logger
        switch reason {
        case .finished, .peerGone: logger.debug("connection closed", metadata: ["peer": "\(peer)"])
        case .failed: logger.debug("connection failed", metadata: ["peer": "\(peer)"])
        case .stalled: logger.info("closed a connection that left its replies unread", metadata: ["peer": "\(peer)"])
        case .partialLineTimedOut: logger.info("closed a connection that left a request unfinished", metadata: ["peer": "\(peer)"])
        case .idle: logger.debug("closed an idle connection", metadata: ["peer": "\(peer)"])
        case .drained: logger.debug("closed a connection at the end of the drain", metadata: ["peer": "\(peer)"])
        }
    }

    /// The slot of a live connection's tag; nil once that connection is gone.
    private func slot(of tag: UInt64) -> Int? {
        let slot = Int(truncatingIfNeeded: tag & 0xFFFF_FFFF)
        return slot < self.tags.count && self.tags[slot] == tag ? slot : nil
    }

    private func takeMessages(now: Double) -> Int {
        let messages = self.inbox.withLock { inbox in
            let taken = inbox.messages
            inbox.messages.removeAll(keepingCapacity: true)
            return taken
        }
        var served = 0
        for message in messages {
            switch message {
            case .adopt(let descriptor, let peer):
                self.adopt(descriptor, peer: peer, now: now)
            case .reply(let tag, let bytes):
                guard let slot = self.slot(of: tag) else { continue }
                served += self.slots[slot]!.replied(bytes, now: now, services: self.services)
                self.service(slot, now: now)
            case .drain(let deadline):
                self.drain(until: deadline, now: now)
            }
        }
        return served
    }

    private func acceptConnections(now: Double) {
        guard let listener = self.listener else { return }
        // Bounded so a connection storm cannot starve the connections already open.
        for _ in 0..<64 {
            let descriptor = accept4(listener, nil, nil, Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue))
            guard descriptor >= 0 else {
                if errno == EMFILE || errno == ENFILE {
                    // Level-triggered: the listener would report ready forever. Retried at housekeeping.
                    self.services.logger.warning("out of file descriptors; pausing accepts for a second")
                    self.watchListener(0)
                    self.listenerPaused = true
                }
                return
            }
            guard let peer = PeerCredentials.read(descriptor: descriptor) else {
                close(descriptor)
                continue
            }
            if let refusal = self.services.admitConnection(peer) {
                self.refuse(descriptor, peer: peer, reason: refusal, now: now)
                continue
            }
            let loop = self.peers[self.nextPeer % self.peers.count]
            self.nextPeer &+= 1
            if loop === self {
                self.adopt(descriptor, peer: peer, now: now)
            } else if !loop.post(.adopt(descriptor: descriptor, peer: peer)) {
                close(descriptor)
                self.services.connectionClosed(peer)
            }
        }
    }

    private func watchListener(_ interest: UInt32) {
        guard let listener = self.listener else { return }
        do {
            try self.epoll.modify(listener, interest: interest, tag: Self.listenerTag)
        } catch {
            self.services.logger.error("could not watch the listening socket", metadata: ["error": "\(error)"])
        }
    }

    private func refuse(_ descriptor: Int32, peer: PeerCredentials, reason: String, now: Double) {
        // One line a minute, however fast a caller knocks: the rest are counted into the next.
        if now - self.refusals.loggedAt >= Self.refusalLogInterval {
            let earlier = self.refusals.unlogged
            self.services.logger.warning(
                "refused a connection",
                metadata: ["peer": "\(peer)", "reason": "\(reason)", "refused_since_last_line": "\(earlier)"]
            )
            self.refusals = (loggedAt: now, unlogged: 0)
        } else {
            self.refusals.unlogged += 1
        }
        let error = RPCError(code: RPCError.internalErrorCode, message: reason)
        let line = RPCResponse.line(RPCResponse.failure(id: .null, error: error))
        _ = line.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        close(descriptor)
    }

    private func adopt(_ descriptor: Int32, peer: PeerCredentials, now: Double) {
        let slot = self.freeSlots.popLast() ?? {
            self.slots.append(nil)
            self.tags.append(0)
            self.descriptors.append(-1)
            return self.slots.count - 1
        }()
        self.generation &+= 1
        let tag = (self.generation & 0xFFFF_FFFF) << 32 | UInt64(slot)
        do {
            try self.epoll.add(descriptor, interest: Epoll.readable, tag: tag)
        } catch {
            self.services.logger.warning("could not watch a connection", metadata: ["error": "\(error)"])
            self.freeSlots.append(slot)
            close(descriptor)
            self.services.connectionClosed(peer)
            return
        }
        self.slots[slot] = ClientConnection(descriptor: descriptor, tag: tag, peer: peer, services: self.services, now: now)
        self.tags[slot] = tag
        self.descriptors[slot] = descriptor
        self.services.logger.debug("connection opened", metadata: ["peer": "\(peer)"])
        if case .draining = self.state {
            self.slots[slot]!.machine.drain()
            self.service(slot, now: now)
        }
    }

    private func closeConnection(in slot: Int, reason: ConnectionStateMachine.CloseReason, now: Double) {
        guard var connection = self.slots[slot] else { return }
        self.slots[slot] = nil
        self.tags[slot] = 0
        self.descriptors[slot] = -1
        self.freeSlots.append(slot)
        connection.closed(audit: self.services.audit, now: now)
        close(connection.descriptor)
        self.services.connectionClosed(connection.peer)
        self.logClose(reason, peer: connection.peer)
    }

    /// Stops accepting and has every connection shut down its input: each finishes what it already
    /// received, replies, and closes.
    private func drain(until deadline: Double, now: Double) {
        guard case .running = self.state else { return }
        self.state = .draining(deadline: deadline)
        self.closeListener()
        for slot in self.slots.indices where self.slots[slot] != nil {
            self.slots[slot]!.machine.drain()
            self.service(slot, now: now)
        }
    }

    private func keepHouse(now: Double) {
        self.lastHousekeeping = now
        if self.listenerPaused {
            self.listenerPaused = false
            self.watchListener(Epoll.readable)
        }
        for slot in self.slots.indices where self.slots[slot] != nil {
            self.slots[slot]!.machine.tick(now: now)
            self.slots[slot]!.handOverAudit(now: now, audit: self.services.audit, force: false)
            self.service(slot, now: now)
        }
    }

    private func closeAll(now: Double) {
        for slot in self.slots.indices where self.slots[slot] != nil {
            // Through the state machine, so the request bytes it held are given back.
            _ = self.slots[slot]!.machine.closeNow()
            self.closeConnection(in: slot, reason: .drained, now: now)
        }
    }

    private func closeListener() {
        guard let listener = self.listener else { return }
        self.listener = nil
        self.epoll.remove(listener)
        close(listener)
    }
}
