import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// `serve --metrics-listen HOST:PORT`: Prometheus text at `GET /metrics` over plain HTTP, for a
/// scraper on the same host. Nothing else is served.
public struct MetricsHTTPServer: Service {
    let host: String
    let port: Int
    let exporter: MetricsExporter
    let logger: Logger

    public init(host: String, port: Int, exporter: MetricsExporter, logger: Logger) {
        self.host = host
        self.port = port
        self.exporter = exporter
        self.logger = logger
    }

    public func run() async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: self.host, port: self.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(wrappingChannelSynchronously: channel)
                }
            }
        self.logger.info("metrics listening", metadata: ["address": "\(self.host):\(self.port)"])
        try await withGracefulShutdownHandler {
            try await server.executeThenClose { connections in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in connections {
                        group.addTask { await self.serve(connection) }
                    }
                }
            }
        } onGracefulShutdown: {
            server.channel.close(promise: nil)
        }
    }

    private func serve(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>) async {
        try? await connection.executeThenClose { inbound, outbound in
            var head: HTTPRequestHead?
            for try await part in inbound {
                switch part {
                case .head(let requestHead): head = requestHead
                case .body: continue
                case .end:
                    guard let requestHead = head else { continue }
                    let found = requestHead.method == .GET && requestHead.uri.split(separator: "?").first == "/metrics"
                    let body = found ? await self.exporter.render() : "not found\n"
                    var headers = HTTPHeaders()
                    headers.add(name: "content-type", value: found ? "text/plain; version=0.0.4" : "text/plain")
                    headers.add(name: "content-length", value: String(body.utf8.count))
                    try await outbound.write(.head(HTTPResponseHead(version: requestHead.version, status: found ? .ok : .notFound, headers: headers)))
                    try await outbound.write(.body(.byteBuffer(ByteBuffer(string: body))))
                    try await outbound.write(.end(nil))
                    if !requestHead.isKeepAlive { return }
                }
            }
        }
    }
}
