#if canImport(Glibc)
import Glibc
#endif
import BrokerCore
import Logging
import Synchronization

/// One thread's event loop for the JSON-RPC socket: an epoll set, the connections it owns, and an
/// inbox through which other threads hand it work (general-path replies, adopted connections,
/// shutdown). The first loop also owns the listening socket and deals connections out to all loops.
///
/// Its own lifecycle is `running`, then `draining` (no new connections; each finishes what it was
/// sent), then stopped once no connection is left or the drain deadline passes.
///
/// `@unchecked Sendable`: everything but `inbox` and `stopState` is touched only on the loop's thread.
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

    private struct StopState {
        var stopped = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private static let wakeTag = UInt64.max
    private static let listenerTag = UInt64.max - 1
    private static let housekeepingInterval = 1.0
    private static let readBufferSize = 64 << 10
    /// A client that leaves its replies unread this long is disconnected, so it cannot pin memory or a slot.
    static let stalledWriteTimeout = 30.0

    private let epoll: Epoll
    private let services: ConnectionServices
    private let inbox = Mutex<[Message]>([])
    private let stopState = Mutex(StopState())
    private let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: readBufferSize, alignment: 16)
    private var state = State.running
    /// Connections by slot; a connection's tag is its slot plus a generation in the high 32 bits,
    /// so a reply for a closed connection never reaches the next one in its slot.
    private var slots: [ClientConnection?] = []
    /// Each slot's tag (0 when free), apart from `slots` so checking one does not copy a connection.
    private var tags: [UInt64] = []
    private var freeSlots: [Int] = []
    private var generation: UInt64 = 0
    private var listener: Int32?
    private var listenerPaused = false
    private var peers: [SocketLoop] = []
    private var nextPeer = 0
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
    func post(_ message: Message) {
        let wasEmpty = self.inbox.withLock { inbox in
            inbox.append(message)
            return inbox.count == 1
        }
        if wasEmpty { self.epoll.wake() }
    }

    func waitUntilStopped() async {
        await withCheckedContinuation { continuation in
            let stopped = self.stopState.withLock { state in
                if !state.stopped { state.waiter = continuation }
                return state.stopped
            }
            if stopped { continuation.resume() }
        }
    }

    func register(_ descriptor: Int32, interest: UInt32, tag: UInt64) {
        do {
            try self.epoll.modify(descriptor, interest: interest, tag: tag)
        } catch {
            self.services.logger.warning("could not watch a connection", metadata: ["error": "\(error)"])
        }
    }

    private func run() {
        // One clock reading per batch of events: everything in a batch is handled at the same moment.
        var now = self.services.clock.monotonicNow()
        while true {
            if case .draining(let deadline) = self.state, self.openCount == 0 || now >= deadline { break }
            var timeout = Self.housekeepingInterval
            if case .draining(let deadline) = self.state { timeout = min(timeout, max(0, deadline - now)) }
            let ready = self.epoll.wait(timeoutMilliseconds: Int32((timeout * 1000).rounded(.up)))
            now = self.services.clock.monotonicNow()
            var served = 0
            for index in 0..<ready {
                served += self.handle(self.epoll.event(at: index), now: now)
            }
            if served > 0 { self.services.fastTokenGets.increment(by: Int64(served)) }
            if now - self.lastHousekeeping >= Self.housekeepingInterval { self.keepHouse(now: now) }
        }
        self.closeAll(now: now)
        self.closeListener()
        let waiter = self.stopState.withLock { state in
            state.stopped = true
            return state.waiter.take()
        }
        waiter?.resume()
    }

    /// Returns how many `token.get`s the fast path answered.
    private func handle(_ event: Epoll.Event, now: Double) -> Int {
        switch event.tag {
        case Self.wakeTag:
            self.epoll.acknowledgeWake()
            self.takeMessages(now: now)
            return 0
        case Self.listenerTag:
            self.acceptConnections(now: now)
            return 0
        default:
            guard let slot = self.slot(of: event.tag) else { return 0 }
            guard let served = self.slots[slot]!.handle(event, buffer: self.readBuffer, now: now, services: self.services, loop: self) else {
                self.closeConnection(in: slot, now: now)
                return 0
            }
            return served
        }
    }

    /// The slot of a live connection's tag; nil once that connection is gone.
    private func slot(of tag: UInt64) -> Int? {
        let slot = Int(truncatingIfNeeded: tag & 0xFFFF_FFFF)
        return slot < self.tags.count && self.tags[slot] == tag ? slot : nil
    }

    private func takeMessages(now: Double) {
        let messages = self.inbox.withLock { inbox in
            let taken = inbox
            inbox.removeAll(keepingCapacity: true)
            return taken
        }
        for message in messages {
            switch message {
            case .adopt(let descriptor, let peer):
                self.adopt(descriptor, peer: peer, now: now)
            case .reply(let tag, let bytes):
                guard let slot = self.slot(of: tag) else { continue }
                if !self.slots[slot]!.generalPathReplied(bytes, now: now, services: self.services, loop: self) {
                    self.closeConnection(in: slot, now: now)
                }
            case .drain(let deadline):
                self.drain(until: deadline)
            }
        }
    }

    private func acceptConnections(now: Double) {
        guard let listener = self.listener else { return }
        // Bounded so a connection storm cannot starve the connections already open.
        for _ in 0..<64 {
            let descriptor = Glibc.accept(listener, nil, nil)
            guard descriptor >= 0 else {
                if errno == EMFILE || errno == ENFILE {
                    // Level-triggered: the listener would report ready forever. Retried at housekeeping.
                    self.services.logger.warning("out of file descriptors; pausing accepts for a second")
                    self.register(listener, interest: 0, tag: Self.listenerTag)
                    self.listenerPaused = true
                }
                return
            }
            _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
            _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
            guard let peer = PeerCredentials.read(descriptor: descriptor) else {
                close(descriptor)
                continue
            }
            guard self.services.admitConnection() else {
                self.refuse(descriptor, peer: peer)
                continue
            }
            let loop = self.peers[self.nextPeer % self.peers.count]
            self.nextPeer &+= 1
            if loop === self {
                self.adopt(descriptor, peer: peer, now: now)
            } else {
                loop.post(.adopt(descriptor: descriptor, peer: peer))
            }
        }
    }

    private func refuse(_ descriptor: Int32, peer: PeerCredentials) {
        let reason = "too many connections (limit \(self.services.maximumConnections)); try again later"
        self.services.logger.warning("refused a connection", metadata: ["peer": "\(peer)", "reason": "\(reason)"])
        let error = RPCError(code: RPCError.internalErrorCode, message: reason)
        let line = RPCResponse.line(RPCResponse.failure(id: .null, error: error))
        _ = line.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        close(descriptor)
    }

    private func adopt(_ descriptor: Int32, peer: PeerCredentials, now: Double) {
        let slot = self.freeSlots.popLast() ?? {
            self.slots.append(nil)
            self.tags.append(0)
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
            self.services.connectionClosed()
            return
        }
        self.slots[slot] = ClientConnection(descriptor: descriptor, tag: tag, peer: peer, services: self.services, now: now)
        self.tags[slot] = tag
        self.services.logger.debug("connection opened", metadata: ["peer": "\(peer)"])
        if case .draining = self.state { self.slots[slot]!.shutDownInput(loop: self) }
    }

    private func closeConnection(in slot: Int, now: Double) {
        guard var connection = self.slots[slot] else { return }
        self.slots[slot] = nil
        self.tags[slot] = 0
        self.freeSlots.append(slot)
        connection.closed(audit: self.services.audit, now: now)
        close(connection.descriptor)
        self.services.connectionClosed()
        self.services.logger.debug("connection closed", metadata: ["peer": "\(connection.peer)"])
    }

    /// Stops accepting and half-closes every connection's input: each finishes what it already
    /// received, replies, and closes.
    private func drain(until deadline: Double) {
        guard case .running = self.state else { return }
        self.state = .draining(deadline: deadline)
        self.closeListener()
        for slot in self.slots.indices where self.slots[slot] != nil {
            self.slots[slot]!.shutDownInput(loop: self)
        }
    }

    private func keepHouse(now: Double) {
        self.lastHousekeeping = now
        if self.listenerPaused, let listener = self.listener {
            self.listenerPaused = false
            self.register(listener, interest: Epoll.readable, tag: Self.listenerTag)
        }
        for slot in self.slots.indices where self.slots[slot] != nil {
            if let since = self.slots[slot]!.stalledSince, now - since >= Self.stalledWriteTimeout {
                self.services.logger.info("closed a connection that left its replies unread", metadata: ["peer": "\(self.slots[slot]!.peer)"])
                self.closeConnection(in: slot, now: now)
                continue
            }
            self.slots[slot]!.handOverAudit(now: now, audit: self.services.audit, force: false)
        }
    }

    private func closeAll(now: Double) {
        for slot in self.slots.indices where self.slots[slot] != nil {
            self.closeConnection(in: slot, now: now)
        }
    }

    private func closeListener() {
        guard let listener = self.listener else { return }
        self.listener = nil
        self.epoll.remove(listener)
        close(listener)
    }
}
