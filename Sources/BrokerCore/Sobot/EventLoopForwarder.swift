import NIOCore
import NIOHTTP1
import NIOPosix
import Metrics
import Synchronization

/// Forwards whole Sobot calls to plain-HTTP base URLs over keep-alive connections owned by the event
/// loop that asks: no task, no actor and no thread hop per call, which is what the HTTP proxy's
/// throughput is made of. Each loop keeps its own idle connections per upstream host.
///
/// `https` base URLs are not handled here (`canForward` says so); their calls go through
/// `SobotClient.forward` (AsyncHTTPClient, with TLS). Replies are bounded like `SobotClient`'s:
/// `SobotCall.maximumBodySize`, the connect timeout, and the call's total deadline.
public final class EventLoopForwarder: Sendable {
    /// Where a region's plain-HTTP base URL points.
    struct Endpoint: Hashable, Sendable {
        let host: String
        let port: Int
        /// The base URL's path, prefixed to every call's path.
        let pathPrefix: String
        /// `Host` header value.
        let authority: String
    }

    /// Idle keep-alive connections kept per upstream host and loop.
    static let maximumIdlePerEndpoint = 64

    private let endpoints: [String: Endpoint]
    /// Each region's call-latency timers, made once: looking a metric up per call costs a lock and hashing.
    private let timers: [String: (ok: Timer, unavailable: Timer)]
    private let timeouts: SobotClient.Timeouts
    private let pools = Mutex<[ObjectIdentifier: LoopPool]>([:])

    public init(regions: RegionDirectory, timeouts: SobotClient.Timeouts) {
        var endpoints: [String: Endpoint] = [:]
        for region in regions.names {
            if let base = regions.baseURL(for: region), let endpoint = Self.endpoint(plainHTTP: base) { endpoints[region] = endpoint }
        }
        self.endpoints = endpoints
        self.timers = endpoints.keys.reduce(into: [:]) { timers, region in
            timers[region] = (BrokerMetrics.upstreamTimer(region: region, endpoint: "forward", outcome: "ok"),
                              BrokerMetrics.upstreamTimer(region: region, endpoint: "forward", outcome: "unavailable"))
        }
        self.timeouts = timeouts
    }

    /// A plain-HTTP base URL as an endpoint, read by `RegionDirectory`'s own check; nil for https (or
    /// a URL that check refuses).
    static func endpoint(plainHTTP base: String) -> Endpoint? {
        guard let url = RegionDirectory.parse(base), !url.isTLS else { return nil }
        return Endpoint(host: url.host, port: url.port ?? 80, pathPrefix: url.path, authority: url.authority)
    }

    /// Whether `region`'s calls can go through this forwarder (its base URL is plain HTTP).
    public func canForward(region: String) -> Bool {
        self.endpoints[region] != nil
    }

    /// Sends `call` with `token` to `region` on `loop`'s connections (cheapest when called on `loop`);
    /// the future completes on `loop`.
    /// Fails (as `SobotError.unavailable`) only when no whole answer came in time.
    public func forward(_ call: SobotCall, region: String, token: String, on loop: EventLoop) -> EventLoopFuture<SobotCallReply> {
        guard let endpoint = self.endpoints[region] else {
            return loop.makeFailedFuture(SobotError.unavailable("no plain-HTTP base URL for region \"\(region)\""))
        }
        guard IssuedToken.isWellFormed(token) else { return loop.makeFailedFuture(SobotError.unavailable("the token is not a valid header value")) }
        var headers = SobotClient.headers(for: call, token: token)
        headers.add(name: "host", value: endpoint.authority)
        // AsyncHTTPClient adds the framing itself; here it is ours to send.
        if call.body != nil || call.method != .get { headers.add(name: "content-length", value: String(call.body?.count ?? 0)) }
        let body = call.body.map { ByteBuffer(bytes: $0) }
        let head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: call.method.rawValue), uri: endpoint.pathPrefix + call.target, headers: headers)
        let started = ContinuousClock.now
        let deadline = NIODeadline.now() + .milliseconds(Int64(self.timeouts.total * 1000))
        let connect = TimeAmount.milliseconds(Int64(self.timeouts.connect * 1000))
        let pool = self.pool(for: loop)
        // The proxy calls from `loop` itself; anyone else is moved there first.
        let reply =
            loop.inEventLoop
            ? pool.execute(head: head, body: body, endpoint: endpoint, connectTimeout: connect, deadline: deadline)
            : loop.flatSubmit { pool.execute(head: head, body: body, endpoint: endpoint, connectTimeout: connect, deadline: deadline) }
        if let timers = self.timers[region] {
            reply.whenComplete { result in
                let timer = if case .success = result { timers.ok } else { timers.unavailable }
                timer.recordNanoseconds((ContinuousClock.now - started).nanoseconds)
            }
        }
        return reply
    }

    private func pool(for loop: EventLoop) -> LoopPool {
        self.pools.withLock { pools in
            if let pool = pools[ObjectIdentifier(loop)] { return pool }
            let pool = LoopPool(loop: loop)
            pools[ObjectIdentifier(loop)] = pool
            return pool
        }
    }

    /// Closes every idle connection (the broker is stopping).
    public func shutdown() {
        for pool in self.pools.withLock({ Array($0.values) }) {
            pool.loop.execute { pool.closeIdle() }
        }
    }
}

/// One event loop's connections. Touched only on `loop`.
private final class LoopPool: @unchecked Sendable {
    let loop: EventLoop
    private var idle: [EventLoopForwarder.Endpoint: [Channel]] = [:]

    init(loop: EventLoop) {
        self.loop = loop
    }

    func execute(
        head: HTTPRequestHead,
        body: ByteBuffer?,
        endpoint: EventLoopForwarder.Endpoint,
        connectTimeout: TimeAmount,
        deadline: NIODeadline
    ) -> EventLoopFuture<SobotCallReply> {
        self.loop.assertInEventLoop()
        let channel: EventLoopFuture<Channel>
        if let reused = self.takeIdle(endpoint) {
            channel = self.loop.makeSucceededFuture(reused)
        } else {
            channel = ClientBootstrap(group: self.loop)
                .connectTimeout(connectTimeout)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(UpstreamExchangeHandler())
                    }
                }
                .connect(host: endpoint.host, port: endpoint.port)
        }
        let promise = self.loop.makePromise(of: SobotCallReply.self)
        let patience = max(1, ((deadline - .now()).nanoseconds + 999_999_999) / 1_000_000_000)
        let timeout = self.loop.scheduleTask(deadline: deadline) {
            promise.fail(SobotError.unavailable("timed out (no whole answer within \(patience) s)"))
        }
        channel.whenComplete { result in
            switch result {
            case .failure(let error):
                promise.fail(SobotError.unavailable(SobotClient.describe(error)))
            case .success(let channel):
                self.exchange(on: channel, head: head, body: body, endpoint: endpoint, promise: promise)
            }
        }
        promise.futureResult.whenComplete { _ in timeout.cancel() }
        return promise.futureResult
    }

    private func exchange(
        on channel: Channel,
        head: HTTPRequestHead,
        body: ByteBuffer?,
        endpoint: EventLoopForwarder.Endpoint,
        promise: EventLoopPromise<SobotCallReply>
    ) {
        guard let handler = try? channel.pipeline.syncOperations.handler(type: UpstreamExchangeHandler.self) else {
            channel.close(promise: nil)
            promise.fail(SobotError.unavailable("upstream connection is not usable"))
            return
        }
        let answered = self.loop.makePromise(of: UpstreamExchangeHandler.Answer.self)
        handler.begin(answered)
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if let body { channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        answered.futureResult.whenComplete { result in
            switch result {
            case .success(let answer):
                if answer.keepAlive, channel.isActive {
                    self.putIdle(channel, endpoint)
                } else {
                    channel.close(promise: nil)
                }
                promise.succeed(answer.reply)
            case .failure(let error):
                channel.close(promise: nil)
                promise.fail(error is SobotError ? error : SobotError.unavailable(SobotClient.describe(error)))
            }
        }
        // A deadline that passes first closes the connection, which ends the exchange.
        promise.futureResult.whenFailure { _ in channel.close(promise: nil) }
    }

    private func takeIdle(_ endpoint: EventLoopForwarder.Endpoint) -> Channel? {
        while let channel = self.idle[endpoint]?.popLast() {
            if channel.isActive { return channel }
        }
        return nil
    }

    private func putIdle(_ channel: Channel, _ endpoint: EventLoopForwarder.Endpoint) {
        var channels = self.idle[endpoint, default: []]
        guard channels.count < EventLoopForwarder.maximumIdlePerEndpoint else {
            channel.close(promise: nil)
            return
        }
        channels.append(channel)
        self.idle[endpoint] = channels
    }

    func closeIdle() {
        for channel in self.idle.values.joined() { channel.close(promise: nil) }
        self.idle = [:]
    }
}

/// One upstream connection's side of an exchange: collects the reply to the request in flight, up to
/// `SobotCall.maximumBodySize`, and says whether the connection may be used again.
final class UpstreamExchangeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart

    struct Answer {
        let reply: SobotCallReply
        let keepAlive: Bool
    }

    private var pending: EventLoopPromise<Answer>?
    private var head: HTTPResponseHead?
    private var body: [UInt8] = []

    func begin(_ promise: EventLoopPromise<Answer>) {
        self.pending = promise
        self.head = nil
        self.body.removeAll(keepingCapacity: true)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            if let length = head.headers.first(name: "content-length").flatMap(Int.init), (0...SobotCall.maximumBodySize).contains(length) {
                self.body.reserveCapacity(length)
            }
        case .body(let chunk):
            guard self.body.count + chunk.readableBytes <= SobotCall.maximumBodySize else {
                self.finish(.failure(SobotError.unavailable("the reply is larger than \(SobotCall.maximumBodySize >> 20) MiB")))
                context.close(promise: nil)
                return
            }
            self.body.append(contentsOf: chunk.readableBytesView)
        case .end:
            guard let head = self.head else {
                self.finish(.failure(SobotError.unavailable("the upstream answered without a head")))
                return
            }
            let reply = SobotCallReply(status: Int(head.status.code), contentType: head.headers.first(name: "content-type"), body: self.body)
            self.finish(.success(Answer(reply: reply, keepAlive: head.isKeepAlive)))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.finish(.failure(SobotError.unavailable("the upstream closed the connection before answering")))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        self.finish(.failure(SobotError.unavailable(SobotClient.describe(error))))
        context.close(promise: nil)
    }

    private func finish(_ result: Result<Answer, Error>) {
        guard let pending = self.pending else { return }
        self.pending = nil
        pending.completeWith(result)
    }
}
