import BrokerCore
import BrokerServer
import Foundation
import TestSupport
import Testing

/// Attacks on the socket server found by the hardening review (issue 14), each against the real daemon.
@Suite(.heavy) struct SocketHardeningTests {
    static let health = #"{"jsonrpc":"2.0","id":1,"method":"broker.health"}"#

    static var hasPython: Bool {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else {
            print("skipped: needs /usr/bin/python3 to hold connections as a second user")
            return false
        }
        return true
    }

    /// Starts `script` under python3 as `nobody`, with the socket path as its argument.
    static func runAsNobody(python script: String, socket: String) async throws -> BrokerProcess {
        let process = BrokerProcess(["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/python3", "-c", script, socket], executable: "/usr/bin/setpriv")
        try await process.launch()
        return process
    }

    // MARK: Socket takeover

    @Test func aSecondDaemonNeverTakesOverALiveSocket() async throws {
        let shared = TemporaryDirectory("takeover")
        let socket = shared.file("broker.sock")
        let first = try await RunningDaemon(tenants: 1, socket: socket)
        let second = try await RunningDaemon(tenants: 3, start: false, socket: socket)
        let refused = try await runBroker(["serve"], environment: second.environment)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("live socket"), "\(refused.stderr)")
        #expect(!refused.stderr.contains("token engine loaded"), "refused before doing any work: \(refused.stderr)")
        // Clients still reach the first daemon's home: it has one tenant, the second three.
        let health = try await first.call("broker.health").get()
        #expect(health["tenants"] == 1)
        _ = try await first.stop()
        #expect(!FileManager.default.fileExists(atPath: socket), "the first daemon removes its own socket")
        await first.shutdown()
        await second.shutdown()
    }

    @Test func onExitADaemonLeavesASocketThatIsNoLongerItsOwn() async throws {
        let shared = TemporaryDirectory("replaced")
        let socket = shared.file("broker.sock")
        let daemon = try await RunningDaemon(tenants: 1, socket: socket)
        // Someone else's socket now stands at the path (the daemon's own was moved aside).
        #expect(rename(socket, shared.file("moved.sock")) == 0)
        let other = try Self.listeningSocket(at: socket)
        defer { close(other) }
        let exit = try #require(try await daemon.stop())
        #expect(exit.status == 0, "\(exit.stderr)")
        var info = stat()
        #expect(lstat(socket, &info) == 0, "the daemon must not unlink a socket it did not create")
        await daemon.shutdown()
    }

    static func listeningSocket(at path: String) throws -> Int32 {
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { bytes in
            bytes.copyBytes(from: path.utf8)
            bytes[path.utf8.count] = 0
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(descriptor, 8) == 0 else { throw DaemonTestError("could not listen at \(path)") }
        return descriptor
    }

    // MARK: Unbounded general-path work and memory

    @Test func unreadGeneralPathRepliesDoNotPileUp() async throws {
        // tenant.list of 2,000 tenants is about 200 kB; 1,000 of them unread used to pile up 200 MB.
        let daemon = try await RunningDaemon(tenants: 2000)
        let pid = try #require(daemon.process?.pid)
        let before = try #require(DaemonLimitsTests.residentKilobytes(pid: pid))
        let flooder = try daemon.connect()
        let request = Array(#"{"jsonrpc":"2.0","id":1,"method":"tenant.list"}"#.utf8) + [0x0a]
        let sent = flooder.sendWithoutBlocking(Array(repeatElement(request, count: 1000).joined()))
        #expect(sent > 100 * request.count)
        // Give the daemon time to do all it is going to do for the flooder.
        try await Task.sleep(for: .seconds(3))
        let after = try #require(DaemonLimitsTests.residentKilobytes(pid: pid))
        #expect(after - before < 48 * 1024, "RSS grew from \(before) kB to \(after) kB")
        let bystander = try daemon.connect()
        #expect(try await bystander.reply(Self.health)["result"]?["status"] == "ok")
        await daemon.shutdown()
    }

    @Test func workOfAClientThatWentAwayIsCancelled() async throws {
        let daemon = try await RunningDaemon(tenants: 1)
        _ = try await daemon.call("token.get", ["tenant": "t0"])
        daemon.simulator.businessFault = .latency(milliseconds: 500)
        let before = daemon.simulator.businessRequestCount
        var client: BrokerConnection? = try daemon.connect()
        let query = #"{"jsonrpc":"2.0","id":1,"method":"marketing.catalog.query","params":{"tenant":"t0"}}"#
        try client?.send(Array(repeatElement(query + "\n", count: 40).joined().utf8))
        // 40 calls of 0.5 s each, one at a time, would run for 20 s. Go away after the first one or two.
        let started = await eventually(timeout: 60) { daemon.simulator.businessRequestCount > before }
        #expect(started)
        client = nil
        try await Task.sleep(for: .seconds(4))
        let made = daemon.simulator.businessRequestCount - before
        #expect(made <= 6, "\(made) upstream calls for a client that left after the first")
        #expect(try await daemon.call("broker.health").get()["status"] == "ok")
        await daemon.shutdown()
    }

    // MARK: Slots and memory held forever

    @Test func idleConnectionsAreClosed() async throws {
        let daemon = try await RunningDaemon(tenants: 1, start: false)
        try await daemon.start(extraArguments: ["--idle-timeout", "1"])
        let idle = try daemon.connect()
        let busy = try daemon.connect()
        #expect(try await busy.reply(Self.health)["result"] != nil)
        await #expect(throws: BrokerClientError.self, "the daemon closes the idle connection") {
            try await onThread { try idle.readLine() }
        }
        await daemon.shutdown()
    }

    @Test func partialLinesCannotPinTheDaemonsMemory() async throws {
        // 8 MiB for all ordinary callers, 2 MiB of it for any one uid.
        guard Self.hasPython,
            let (daemon, shared) = try await AccessAndAuditTests.daemonForNobody(tenants: 1, extraArguments: ["--max-request-memory", "8"])
        else { return }
        defer { withExtendedLifetime(shared) {} }
        let pid = try #require(daemon.process?.pid)
        let before = try #require(DaemonLimitsTests.residentKilobytes(pid: pid))
        // `nobody` sends 12 unfinished lines of 0.9 MB, one per connection, and counts the refusals.
        let script = """
            import socket, sys, time
            held, refused = [], 0
            for _ in range(12):
                s = socket.socket(socket.AF_UNIX)
                s.connect(sys.argv[1])
                s.settimeout(3)
                try:
                    s.sendall(b"x" * 900000)
                except OSError:
                    pass
                held.append(s)
            for s in held:
                try:
                    if b"-32603" in s.recv(4096): refused += 1
                except OSError:
                    pass
            print(refused, flush=True)
            time.sleep(20)
            """
        let holder = try await Self.runAsNobody(python: script, socket: daemon.socket)
        defer { holder.signal(SIGKILL) }
        let counted = await eventually(timeout: 60) { holder.stdoutSoFar.contains("\n") }
        #expect(counted, "the holder reports: \(holder.stderrSoFar)")
        let refused = Int(holder.stdoutSoFar.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        #expect(refused >= 9, "with 2 MiB for one uid, at most 2 of 12 lines of 0.9 MB may be held; \(refused) were refused")
        let after = try #require(DaemonLimitsTests.residentKilobytes(pid: pid))
        #expect(after - before < 32 * 1024, "RSS grew from \(before) kB to \(after) kB")
        // The owner is not held back by what another user holds.
        let owner = try daemon.connect()
        try await onThread { try owner.send(Array(repeating: UInt8(ascii: " "), count: 900_000)) }
        #expect(try await owner.reply(Self.health)["result"]?["status"] == "ok")
        await daemon.shutdown()
    }

    @Test func oneUserCannotTakeEveryConnectionSlot() async throws {
        guard Self.hasPython,
            let (daemon, shared) = try await AccessAndAuditTests.daemonForNobody(
                tenants: 1,
                extraArguments: ["--max-connections", "40", "--max-connections-per-uid", "10"]
            )
        else { return }
        defer { withExtendedLifetime(shared) {} }
        // `nobody` opens 30 connections and holds them; each refused one is answered with an error and closed.
        let script = """
            import socket, sys, time
            held, refused = [], 0
            for _ in range(30):
                s = socket.socket(socket.AF_UNIX)
                s.connect(sys.argv[1])
                s.settimeout(0.5)
                try:
                    if b"too many connections" in s.recv(4096): refused += 1
                    else: held.append(s)
                except socket.timeout:
                    held.append(s)
            print(len(held), refused, flush=True)
            time.sleep(20)
            """
        let holder = try await Self.runAsNobody(python: script, socket: daemon.socket)
        defer { holder.signal(SIGKILL) }
        let counted = await eventually(timeout: 60) { holder.stdoutSoFar.contains("\n") }
        #expect(counted, "the holder reports: \(holder.stderrSoFar)")
        let numbers = holder.stdoutSoFar.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Int($0) }
        #expect(numbers == [10, 20], "held and refused: \(holder.stdoutSoFar)")
        // The broker's own user still gets in, many times over.
        let mine = try (0..<20).map { _ in try daemon.connect() }
        for connection in mine {
            #expect(try await connection.reply(Self.health)["result"]?["status"] == "ok")
        }
        await daemon.shutdown()
    }
}
