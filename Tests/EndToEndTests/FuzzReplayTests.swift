import Foundation
import TestSupport
import Testing

/// Replays the fuzzing corpora (seeds and every crash found so far) through the fuzz targets,
/// built without libFuzzer: a regression suite for the request reader, dispatcher, import parser and
/// upstream reply decoding.
@Suite(.heavy) struct FuzzReplayTests {
    static var corpus: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fuzz/corpus").path
    }

    @Test(arguments: ["request", "import", "upstream", "proxy"])
    func theCorpusReplaysCleanly(_ target: String) async throws {
        let replayer = BrokerExecutable.path.replacingOccurrences(of: "/sobot-broker", with: "/sobot-broker-fuzz", options: .backwards)
        let result = try await onThread {
            let process = BrokerProcess([target, Self.corpus + "/" + target], executable: replayer)
            try process.start()
            return process.waitForExit()
        }
        #expect(result.status == 0, "\(result.stderr)")
        let count = Int(result.stdout.split(separator: " ").dropFirst().first ?? "") ?? 0
        #expect(count >= 5, "\(result.stdout)")
    }
}
