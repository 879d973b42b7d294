#if canImport(Glibc)
import Glibc
#endif
import BrokerCore

/// One client of a socket loop: its line splitter, the reply bytes it is owed, and the lines it has
/// handed to the general path. Lives in its loop's slot table and is touched only on that thread.
///
/// `token.get` for a fresh cached token is answered in place (the fast path). Every other line goes
/// to the general path, one task per connection taking lines in order; while any line of this
/// connection is there, every later line follows it, so replies keep their request order.
struct ClientConnection {
    /// While replies pile up unread past this many bytes, the connection stops reading requests…
    static let highWaterMark = 256 << 10
    /// …until they drain below this.
    static let lowWaterMark = 32 << 10
    /// Lines queued for the general path beyond which the connection stops reading requests.
    static let maximumLinesWithGeneralPath = 128
    /// How often a connection hands its fast-path success counts to the audit log, which merges
    /// them across connections (see `AuditLog.recordServed`)…
    static let auditInterval = 60.0
    /// …or, checked after each read, sooner at this many runs of one token slot, so its own
    /// tally stays small.
    static let auditHandOverSize = 1024
    /// A general-path reply at least this large (`tenant.list` of many thousand tenants) is followed
    /// by `FreedMemory.release()`.
    static let largeReply = 1 << 20
    /// Output capacity kept for reuse once everything is written; a burst beyond it is given back.
    private static let keptOutputCapacity = 64 << 10

    let descriptor: Int32
    let tag: UInt64
    let peer: PeerCredentials
    private let peerIsOwner: Bool
    private var splitter: LineSplitter
    private var outbound: [UInt8] = []
    private var written = 0
    private var linesWithGeneralPath = 0
    private var generalPath: AsyncStream<[UInt8]>.Continuation?
    private var inputClosed = false
    private var owesLineTooLongReply = false
    /// The epoll interest currently registered.
    private var interest: UInt32
    /// When unread replies went past the high-water mark; nil while under it.
    private(set) var stalledSince: Double?
    private var unaudited = ServedTally()
    private var auditedAt: Double

    init(descriptor: Int32, tag: UInt64, peer: PeerCredentials, services: ConnectionServices, now: Double) {
        self.descriptor = descriptor
        self.tag = tag
        self.peer = peer
        self.peerIsOwner = services.access.current.isOwner(uid: peer.uid)
        self.splitter = LineSplitter(maximumLength: services.maximumLineLength)
        self.interest = Epoll.readable
        self.auditedAt = now
    }

    /// Reads once if the event says so and writes what is owed. Returns how many `token.get`s the
    /// fast path answered, or nil when the connection is done and should be closed.
    mutating func handle(
        _ event: Epoll.Event,
        buffer: UnsafeMutableRawBufferPointer,
        now: Double,
        services: ConnectionServices,
        loop: SocketLoop
    ) -> Int? {
        var served = 0
        if event.isReadable || event.isHangUp, !self.inputClosed {
            let count = read(self.descriptor, buffer.baseAddress, buffer.count)
            if count > 0 {
                served = self.receive(UnsafeRawBufferPointer(rebasing: buffer[..<count]), now: now, services: services, loop: loop)
            } else if count == 0 || (errno != EAGAIN && errno != EINTR) {
                self.closeInput()
            }
        }
        // A peer that can no longer receive is owed nothing more.
        if event.isHangUp, self.inputClosed { return nil }
        return self.flush(now: now, loop: loop) ? served : nil
    }

    /// Takes a general-path reply (nil for a notification) for the oldest line still there.
    mutating func generalPathReplied(_ reply: [UInt8]?, now: Double, services: ConnectionServices, loop: SocketLoop) -> Bool {
        self.linesWithGeneralPath -= 1
        if let reply { self.outbound.append(contentsOf: reply) }
        self.answerLineTooLongIfDue(services: services)
        return self.flush(now: now, loop: loop)
    }

    /// Stops taking requests (graceful drain): what the client already sent is still answered.
    func shutDownInput(loop: SocketLoop) {
        shutdown(self.descriptor, Int32(SHUT_RD))
        // Re-registering polls the socket again, so a read reports the end of input even when no
        // new event would have.
        loop.register(self.descriptor, interest: self.interest, tag: self.tag)
    }

    /// Hands the fast-path success counts to the audit log if `force` or the interval has passed.
    mutating func handOverAudit(now: Double, audit: AuditLog?, force: Bool) {
        guard force || now - self.auditedAt >= Self.auditInterval else { return }
        self.auditedAt = now
        guard !self.unaudited.isEmpty else { return }
        audit?.recordServed(peer: self.peer, counts: self.unaudited)
        self.unaudited.removeAll()
    }

    /// Called once, as the loop closes the descriptor: the general path ends after its queued lines.
    mutating func closed(audit: AuditLog?, now: Double) {
        self.generalPath?.finish()
        self.generalPath = nil
        self.handOverAudit(now: now, audit: audit, force: true)
    }

    private mutating func receive(_ bytes: UnsafeRawBufferPointer, now: Double, services: ConnectionServices, loop: SocketLoop) -> Int {
        var served = 0
        // The splitter is borrowed for the whole call: the closure may touch only the other fields.
        let (tag, peer, peerIsOwner) = (self.tag, self.peer, self.peerIsOwner)
        let usable = self.splitter.split(bytes) { line in
            if self.linesWithGeneralPath == 0,
                Self.answerFast(line, now: now, peer: peer, peerIsOwner: peerIsOwner, services: services, into: &self.outbound, tally: &self.unaudited)
            {
                served += 1
            } else {
                if self.generalPath == nil {
                    self.generalPath = Self.startGeneralPath(tag: tag, peer: peer, services: services, loop: loop)
                }
                self.linesWithGeneralPath += 1
                self.generalPath?.yield(Array(line))
            }
        }
        if self.unaudited.runs.count >= Self.auditHandOverSize {
            self.handOverAudit(now: now, audit: services.audit, force: true)
        }
        if !usable {
            self.closeInput()
            self.owesLineTooLongReply = true
            services.logger.info("closed a connection that sent an over-long line", metadata: ["peer": "\(self.peer)"])
            self.answerLineTooLongIfDue(services: services)
        }
        return served
    }

    /// The fast path: appends the reply and returns true, or returns false (leaving everything as
    /// it was) when the line is not a simple `token.get`, the caller may not have it, or there is no
    /// fresh token to serve. The general path then answers it, with the same bytes when it can.
    private static func answerFast(
        _ line: UnsafeRawBufferPointer,
        now: Double,
        peer: PeerCredentials,
        peerIsOwner: Bool,
        services: ConnectionServices,
        into outbound: inout [UInt8],
        tally: inout ServedTally
    ) -> Bool {
        guard let request = FastTokenRequest.parse(line),
            services.access.allowsTokenGet(peer, tenant: request.tenant, isOwner: peerIsOwner)
        else { return false }
        let id = UnsafeRawBufferPointer(rebasing: line[request.id])
        let slot = services.cache.serve(tenant: request.tenant, region: request.region, now: now) { expiresAt, fragments in
            FastTokenReply.write(id: id, fragments: fragments, expiresIn: max(0, Int64(expiresAt - now)), into: &outbound)
        }
        guard let slot else { return false }
        tally.count(slot)
        return true
    }

    private static func startGeneralPath(
        tag: UInt64,
        peer: PeerCredentials,
        services: ConnectionServices,
        loop: SocketLoop
    ) -> AsyncStream<[UInt8]>.Continuation {
        let (lines, continuation) = AsyncStream.makeStream(of: [UInt8].self)
        let context = CallContext(peer: peer)
        Task {
            for await line in lines {
                let reply = await services.dispatcher.reply(toLine: line, context: context)
                // What built a reply this large (a JSON tree) is freed by now: give it back.
                if let reply, reply.count >= Self.largeReply { FreedMemory.release() }
                loop.post(.reply(tag: tag, bytes: reply))
            }
        }
        return continuation
    }

    private mutating func closeInput() {
        self.inputClosed = true
        // Lines already queued are still answered; the task ends after them.
        self.generalPath?.finish()
    }

    /// The over-long line's error goes out after the replies to every line before it.
    private mutating func answerLineTooLongIfDue(services: ConnectionServices) {
        guard self.owesLineTooLongReply, self.linesWithGeneralPath == 0 else { return }
        self.owesLineTooLongReply = false
        let error = RPCError.invalidRequest("line longer than \(services.maximumLineLength) bytes; closing")
        self.outbound.append(contentsOf: RPCResponse.line(RPCResponse.failure(id: .null, error: error)))
    }

    /// Writes what the socket takes, then registers the interest that follows. Returns false when
    /// the connection failed or has nothing left to do.
    private mutating func flush(now: Double, loop: SocketLoop) -> Bool {
        while self.written < self.outbound.count {
            let sent = self.outbound.withUnsafeBytes { bytes in
                send(self.descriptor, bytes.baseAddress! + self.written, bytes.count - self.written, Int32(MSG_NOSIGNAL))
            }
            if sent > 0 {
                self.written += sent
            } else if sent < 0, errno == EINTR {
                continue
            } else if sent < 0, errno == EAGAIN {
                break
            } else {
                return false
            }
        }
        let unsent = self.outbound.count - self.written
        if unsent == 0 {
            self.outbound.removeAll(keepingCapacity: self.outbound.capacity <= Self.keptOutputCapacity)
            self.written = 0
        } else if self.written >= unsent {
            self.outbound.removeFirst(self.written)
            self.written = 0
        }
        if unsent > Self.highWaterMark, self.stalledSince == nil {
            self.stalledSince = now
        } else if unsent <= Self.lowWaterMark {
            self.stalledSince = nil
        }
        if self.inputClosed, self.linesWithGeneralPath == 0, !self.owesLineTooLongReply, unsent == 0 { return false }
        var wanted: UInt32 = unsent > 0 ? Epoll.writable : 0
        if !self.inputClosed, self.stalledSince == nil, self.linesWithGeneralPath < Self.maximumLinesWithGeneralPath {
            wanted |= Epoll.readable
        }
        if wanted != self.interest {
            self.interest = wanted
            loop.register(self.descriptor, interest: wanted, tag: self.tag)
        }
        return true
    }
}
