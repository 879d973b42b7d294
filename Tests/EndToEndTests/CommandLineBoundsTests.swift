import Foundation
import TestSupport
import Testing

/// Numbers given on the command line are range-checked before they become durations or integers.
@Suite(.heavy) struct CommandLineBoundsTests {
    @Test(arguments: [
        ["bench", "--duration", "1e300"], ["bench", "--token-ttl", "1e300"], ["simulate", "--token-ttl", "1e300"],
        ["simulate", "--token-ttl", "0.5"], ["demo", "--token-ttl", "nan"], ["demo", "--token-ttl", "604801"],
    ])
    func aNumberOutOfRangeIsRefusedWithOneLine(_ arguments: [String]) async throws {
        let directory = TemporaryDirectory("num")
        let result = try await runBroker(arguments, environment: ["SOBOT_BROKER_HOME": directory.file("home")])
        #expect(result.status == 64, "\(result.stderr)")
        #expect(result.stderr.contains(arguments[1]), "\(result.stderr)")
    }
}
