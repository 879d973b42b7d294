import BrokerCore
import NIOCore
import NIOHTTP1

/// One proxy connection, on its event loop: collects each request (within the limits), asks the
/// `ProxyResponder`, and writes the answer. NIO's pipelining handler before it delivers the next
/// request only once this one's answer is written, so one request per connection is in progress.
///
/// A request refused on its head (or for its body's size) is answered at once and the connection
/// closed rather than the rest of it read. Once input is closed (graceful shutdown, or the client's
/// half-close), the request in progress is still answered, then the connection closes.
final class ProxyConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        case receiving(HTTPRequestHead, ByteBuffer?)
        case answering
        /// Refused: nothing more is read.
        case closing
    }

    private let responder: ProxyResponder
    private let peer: PeerCredentials?
    private var state = State.idle
    private var inputClosed = false

    init(responder: ProxyResponder, peer: PeerCredentials?) {
        self.responder = responder
        self.peer = peer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (self.unwrapInboundIn(data), self.state) {
        case (.head(let head), .idle):
            if let refusal = self.responder.refusal(of: head) {
                self.refuse(refusal, version: head.version, context: context)
            } else {
                self.state = .receiving(head, nil)
            }
        case (.body(var chunk), .receiving(let head, var body)):
            guard (body?.readableBytes ?? 0) + chunk.readableBytes <= self.responder.limits.maximumBodySize else {
                self.refuse(self.responder.bodyTooLarge, version: head.version, context: context)
                return
            }
            if body == nil { body = chunk } else { body!.writeBuffer(&chunk) }
            self.state = .receiving(head, body)
        case (.end, .receiving(let head, let body)):
            self.state = .answering
            let request = ProxyRequest(method: head.method, uri: head.uri, headers: head.headers, body: body)
            let keepAlive = head.isKeepAlive
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            self.responder.respond(to: request, peer: self.peer, on: context.eventLoop).whenSuccess { response in
                let (handler, context) = loopBound.value
                handler.write(response, version: head.version, keepAlive: keepAlive, context: context)
            }
        default:
            // Parts after a refusal, or out of order: not read.
            break
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            self.inputClosed = true
            if case .idle = self.state { context.close(promise: nil) }
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func refuse(_ response: ProxyResponse, version: HTTPVersion, context: ChannelHandlerContext) {
        self.state = .closing
        self.write(response, version: version, keepAlive: false, context: context)
    }

    private func write(_ response: ProxyResponse, version: HTTPVersion, keepAlive: Bool, context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        let keepOpen = keepAlive && !self.inputClosed
        if case .answering = self.state { self.state = .idle }
        var headers = HTTPHeaders()
        headers.reserveCapacity(3)
        headers.add(name: "content-type", value: response.contentType)
        headers.add(name: "content-length", value: String(response.body.count))
        if !keepOpen { headers.add(name: "connection", value: "close") }
        context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: version, status: response.status, headers: headers))), promise: nil)
        var body = context.channel.allocator.buffer(capacity: response.body.count)
        body.writeBytes(response.body)
        context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: written)
        if !keepOpen {
            let channel = context.channel
            written.futureResult.whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
