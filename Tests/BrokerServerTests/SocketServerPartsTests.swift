import BrokerCore
import Foundation
import Logging
import TestSupport
import Testing

@testable import BrokerServer

/// The socket server's parts that need a real descriptor but no daemon: the listener, the epoll
/// wrapper, a loop's lifecycle, and connection admission.
@Suite struct SocketServerPartsTests {
    /// Business calls are not this suite's concern.
    struct NoUpstream: UpstreamCalling {
        func post(tenant: String, region: String?, path: String, body: JSONValue) async throws(ModuleError) -> JSONValue {
            throw .internalError("no upstream in this test")
        }
        func tenantIDs() async throws(ModuleError) -> [String] { [] }
    }

    static func services() throws -> ConnectionServices {
        let logger = Logger(label: "test")
        let access = AccessControl(policy: AccessPolicy(ownerUID: getuid(), rules: []))
        let dispatcher = RPCDispatcher(
            handlers: [:],
            registry: try ModuleRegistry([]),
            moduleContext: ModuleContext(upstream: NoUpstream(), logger: logger, clock: SystemClock()),
            access: access,
            audit: nil,
            logger: logger
        )
        return ConnectionServices(
            dispatcher: dispatcher,
            cache: TokenCache(),
            clock: SystemClock(),
            access: access,
            audit: nil,
            logger: logger,
            limits: ConnectionStateMachine.Limits(),
            requestBudget: RequestBytesBudget(limit: 1 << 20),
            admission: ConnectionAdmission(maximumConnections: 16, maximumPerUID: 4, ownerUID: getuid())
        )
    }

    // MARK: Listener

    @Test func aLiveSocketIsRefusedAndAStaleOneReplaced() throws {
        let directory = TemporaryDirectory("listener")
        let path = directory.file("s.sock")
        let live = try UnixListener.bind(path: path, mode: 0o600, group: nil)
        #expect(throws: SocketPathError.self) { _ = try UnixListener.bind(path: path, mode: 0o600, group: nil) }
        close(live.descriptor)
        // Nobody listens now: the socket file is stale and may be replaced.
        let replacement = try UnixListener.bind(path: path, mode: 0o600, group: nil)
        replacement.removeSocketFile()
        close(replacement.descriptor)
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func aPrecreatedStagingDirectoryCannotStopTheListener() throws {
        let directory = TemporaryDirectory("staging")
        // The name the daemon used to stage in, taken by someone else, with something inside.
        let squatted = directory.file(".sobot-broker-\(getpid())")
        #expect(mkdir(squatted, 0o755) == 0)
        _ = FileManager.default.createFile(atPath: squatted + "/x", contents: Data())
        let listener = try UnixListener.bind(path: directory.file("s.sock"), mode: 0o600, group: nil)
        defer { close(listener.descriptor) }
        var info = stat()
        #expect(lstat(directory.file("s.sock"), &info) == 0 && info.st_mode & 0o777 == 0o600)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasPrefix(".sobot-broker-") && $0 != ".sobot-broker-\(getpid())" }
        #expect(leftovers.isEmpty, "the staging directory is removed: \(leftovers)")
    }

    @Test func removingTheSocketFileLeavesAReplacementAlone() throws {
        let directory = TemporaryDirectory("identity")
        let path = directory.file("s.sock")
        let listener = try UnixListener.bind(path: path, mode: 0o600, group: nil)
        defer { close(listener.descriptor) }
        #expect(rename(path, directory.file("moved.sock")) == 0)
        _ = FileManager.default.createFile(atPath: path, contents: Data("someone else's".utf8))
        listener.removeSocketFile()
        #expect(FileManager.default.fileExists(atPath: path))
    }

    // MARK: Epoll

    @Test func aFailingEpollDescriptorIsAnErrorNotNothingReady() throws {
        let epoll = try Epoll(wakeTag: 1)
        // Put something that is not an epoll instance behind its descriptor number.
        let null = open("/dev/null", O_RDONLY)
        #expect(dup2(null, epoll.descriptor) == epoll.descriptor)
        close(null)
        #expect(throws: SystemCallError.self) { _ = try epoll.wait(timeoutMilliseconds: 0) }
    }

    // MARK: Loop lifecycle

    @Test func aStoppedLoopIsReleasedAndRefusesAdoptions() async throws {
        let services = try Self.services()
        let directory = TemporaryDirectory("loop")
        let listener = try UnixListener.bind(path: directory.file("s.sock"), mode: 0o600, group: nil)
        weak var released: SocketLoop?
        var stopped: SocketLoop? = try SocketLoop(services: services)
        released = stopped
        try stopped?.accept(on: listener.descriptor, dealingTo: [stopped!])
        try stopped?.start()
        stopped?.post(.drain(deadline: 0))
        await stopped?.waitUntilStopped()
        var pair: [Int32] = [0, 0]
        #expect(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0)
        defer { close(pair[1]) }
        #expect(stopped?.post(.adopt(descriptor: pair[0], peer: PeerCredentials(pid: 1, uid: 0, gid: 0))) == false, "the sender keeps (and closes) the descriptor")
        close(pair[0])
        stopped = nil
        // The loop's thread lets go of it just after the loop reports it stopped.
        let gone = await eventually(timeout: 60) { released == nil }
        #expect(gone, "a stopped loop is freed, with its epoll descriptor and buffers")
    }

    // MARK: Admission

    @Test func nobodyCanTakeEverySlot() {
        let owner: UInt32 = 1000
        let admission = ConnectionAdmission(maximumConnections: 128, maximumPerUID: 50, ownerUID: owner)
        #expect(admission.reservedConnections == 2)
        for _ in 0..<50 { #expect(admission.admit(uid: 2000) == nil) }
        #expect(admission.admit(uid: 2000)?.contains("per uid") == true)
        for _ in 0..<50 { #expect(admission.admit(uid: 3000) == nil) }
        for _ in 0..<26 { #expect(admission.admit(uid: 4000) == nil) }
        // 126 taken: the last two are for the owner and root.
        #expect(admission.admit(uid: 5000)?.contains("kept for") == true)
        #expect(admission.admit(uid: owner) == nil)
        #expect(admission.admit(uid: 0) == nil)
        #expect(admission.admit(uid: 0)?.contains("too many connections (limit 128)") == true)
        admission.release(uid: 2000)
        #expect(admission.admit(uid: 5000)?.contains("kept for") == true, "a released slot below the reserve is still reserved")
        admission.release(uid: owner)
        admission.release(uid: 0)
        admission.release(uid: 3000)
        #expect(admission.admit(uid: 5000) == nil)
        #expect(admission.admit(uid: 2000) == nil, "uid 2000 is under its cap again")
    }
}
