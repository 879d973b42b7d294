import Testing

@testable import BrokerServer

/// `--metrics-listen HOST:PORT`: loopback only unless `--metrics-listen-any`.
@Suite struct MetricsListenAddressTests {
    @Test func loopbackAddressesAreAccepted() throws {
        for (text, host) in [("127.0.0.1:9464", "127.0.0.1"), ("127.9.8.7:1", "127.9.8.7"), ("[::1]:9464", "::1"), ("::1:9464", "::1"), ("localhost:80", "localhost")] {
            let address = try MetricsListenAddress(parsing: text)
            #expect(address.host == host, "\(text)")
        }
        #expect(try MetricsListenAddress(parsing: "127.0.0.1:65535").port == 65535)
    }

    @Test func otherAddressesNeedTheFlag() throws {
        for text in ["0.0.0.0:9464", "10.1.2.3:9464", "[::]:9464", "128.0.0.1:9464", "metrics.example.com:9464", "[::ffff:127.0.0.1]:9464"] {
            #expect(throws: MetricsListenAddress.ParseError.self, "\(text)") { try MetricsListenAddress(parsing: text) }
            #expect(try MetricsListenAddress(parsing: text, allowingAny: true).port == 9464)
        }
    }

    @Test func malformedAddressesAreRefused() {
        for text in ["9464", ":9464", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:99999999999999999999"] {
            #expect(throws: MetricsListenAddress.ParseError.malformed(text), "\(text)") { try MetricsListenAddress(parsing: text, allowingAny: true) }
        }
    }
}
