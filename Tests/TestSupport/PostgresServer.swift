import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A private PostgreSQL server for one test: a fresh cluster in a temporary directory, reached over
/// loopback TCP on a free port, with trust authentication for the superuser `postgres`. It never uses
/// a system cluster (such as the one Debian's package starts on 5432), so tests neither depend on nor
/// disturb one.
///
/// Tests start it with `startOrSkip()` and stop it in `defer`, so it goes even when the test fails:
///
///     guard let server = try await onThread({ try PostgresServer.startOrSkip() }) else { return }
///     defer { server.stop() }
///
/// Calls that run a program block until it is done (starting takes about a second), so async tests make
/// them through `onThread` to keep the cooperative threads free.
///
/// The programs come from the directory in `SOBOT_TEST_PG_BINDIR` when it is set (`/nonexistent`
/// exercises the skip and CI-failure paths), else from `pg_config --bindir`, else from the newest
/// `/usr/lib/postgresql/*/bin`; never from `PATH`, where a stray `initdb` may stand. PostgreSQL refuses
/// to run as root, so as root every program runs as the OS user `postgres` (through `setpriv`), which
/// owns the temporary directory.
public final class PostgresServer: Sendable {
    /// Where clients connect (TCP; the Unix socket lies in `directory` too, but URLs use this).
    public let host = "127.0.0.1"
    public let port: Int
    /// The superuser role; trust authentication, so no password is checked.
    public let user = "postgres"
    /// The database that exists from the start.
    public let database = "postgres"
    /// Holds the cluster (`data`), the Unix socket and the server's log (`log`); `stop()` removes it.
    public let directory: TemporaryDirectory
    private let binDirectory: String
    private let stopped = Mutex(false)

    private init(binDirectory: String, directory: TemporaryDirectory, port: Int) {
        self.binDirectory = binDirectory
        self.directory = directory
        self.port = port
    }

    // MARK: Availability

    /// Why no server can be started on this machine, in one line; nil when one can.
    public static var unavailableReason: String? {
        guard case .failure(let reason) = located else { return nil }
        return String(describing: reason)
    }

    /// Starts a server, or returns nil after printing `skipping: <reason>` to stderr when PostgreSQL is
    /// not installed. Under CI (`CI=true`) a missing PostgreSQL is a failure: it throws instead.
    public static func startOrSkip() throws -> PostgresServer? {
        if let reason = unavailableReason {
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                throw PostgresServerError("PostgreSQL is required under CI: \(reason)")
            }
            FileHandle.standardError.write(Data("skipping: \(reason)\n".utf8))
            return nil
        }
        return try start()
    }

    /// The directory holding `initdb`, `postgres`, `pg_ctl` and `psql`, looked up once per test process.
    private static let located = Result { try locateBinaries() }

    /// Finds the binaries, after checking that, as root, they can be run as `postgres`.
    private static func locateBinaries() throws -> String {
        if geteuid() == 0 {
            guard getpwnam("postgres") != nil else {
                throw PostgresServerError("running as root, but there is no OS user postgres to run PostgreSQL as")
            }
            guard FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv") else {
                throw PostgresServerError("running as root, but /usr/bin/setpriv is missing to run PostgreSQL as postgres")
            }
        }
        let candidates: [String]
        if let override = ProcessInfo.processInfo.environment["SOBOT_TEST_PG_BINDIR"] {
            candidates = [override]
        } else {
            let configured = try? run("/usr/bin/env", ["pg_config", "--bindir"]).trimmingCharacters(in: .whitespacesAndNewlines)
            candidates = [configured].compactMap { $0 } + installedBinDirectories()
        }
        let tools = ["initdb", "postgres", "pg_ctl", "psql"]
        guard let found = candidates.first(where: { directory in
            tools.allSatisfy { FileManager.default.isExecutableFile(atPath: directory + "/" + $0) }
        }) else {
            let searched = candidates.isEmpty ? "no pg_config and no /usr/lib/postgresql/*/bin" : candidates.joined(separator: ", ")
            throw PostgresServerError("PostgreSQL's initdb, postgres, pg_ctl and psql not found (searched: \(searched))")
        }
        return found
    }

    /// Debian's `/usr/lib/postgresql/<major>/bin` directories, newest first.
    private static func installedBinDirectories() -> [String] {
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        return versions.compactMap(Int.init).sorted(by: >).map { "/usr/lib/postgresql/\($0)/bin" }
    }

    // MARK: Life cycle

    /// Creates a cluster in a new temporary directory and starts a server on a free loopback port.
    /// How many servers may run at once in one test process. Tests run in parallel, and two dozen
    /// clusters starting together on a loaded two-core machine kept connections waiting past every
    /// timeout: a test beyond the limit waits here, on its own thread, for one to stop.
    private static let runningServers = DispatchSemaphore(value: 3)

    public static func start() throws -> PostgresServer {
        Self.runningServers.wait()
        do {
            return try Self.startHoldingASlot()
        } catch {
            Self.runningServers.signal()
            throw error
        }
    }

    private static func startHoldingASlot() throws -> PostgresServer {
        let binDirectory = try located.get()
        let directory = TemporaryDirectory("pg")
        if geteuid() == 0, let account = getpwnam("postgres") {
            guard chown(directory.path, account.pointee.pw_uid, account.pointee.pw_gid) == 0 else {
                throw PostgresServerError("chown \(directory.path) to postgres failed: errno \(errno)")
            }
        }
        try run(
            binDirectory + "/initdb",
            ["-D", directory.file("data"), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"],
            in: directory.path
        )
        var attempts = 1
        while true {
            let server = PostgresServer(binDirectory: binDirectory, directory: directory, port: try freeLoopbackPort())
            do {
                try server.startAgain()
                return server
            } catch let error as PostgresServerError where attempts < 5 && error.description.contains("could not bind") {
                attempts += 1  // Another process took the port between our probe and the server's bind.
            } catch {
                server.stopWithoutReleasingTheSlot()
                throw error
            }
        }
    }

    /// Stops the server (immediate mode) and removes its directory. Idempotent; tests call it in `defer`.
    ///
    /// Returns at once: `pg_ctl stop` and the removal run on a thread of their own, since a `defer` in
    /// an async test runs on one of the two cooperative threads of a two-core machine, and holding it
    /// for the seconds a loaded machine takes to stop a server delayed every other test's timers
    /// (a 1 s deadline was seen to fire 12 s late). The test process waits for every stop when it exits.
    public func stop() {
        Self.pendingStops.enter()
        Self.waitForPendingStopsAtExit
        let thread = Thread {
            self.stopAndWait()
            Self.pendingStops.leave()
        }
        thread.start()
    }

    /// `stop()` that returns once the server is down and its directory gone; blocks, so async code
    /// calls it through `onThread`.
    public func stopAndWait() {
        if self.stopWithoutReleasingTheSlot() { Self.runningServers.signal() }
    }

    /// Stops handed to threads and not yet done.
    private static let pendingStops = DispatchGroup()

    /// Registers, once, an exit handler that waits for `pendingStops`, so no server outlives the tests.
    private static let waitForPendingStopsAtExit: Void = {
        atexit { PostgresServer.pendingStops.wait() }
    }()

    /// Stops the server unless already stopped; true when this call stopped it.
    @discardableResult
    private func stopWithoutReleasingTheSlot() -> Bool {
        let first = self.stopped.withLock { stopped in
            defer { stopped = true }
            return !stopped
        }
        guard first else { return false }
        // Fails harmlessly when the server is already down (after `stopServer()`).
        try? self.pgCtl(["-m", "immediate", "-w", "stop"])
        try? FileManager.default.removeItem(atPath: self.directory.path)
        return true
    }

    /// Shuts the server down cleanly, keeping its data, so a test can simulate a database outage.
    public func stopServer() throws {
        try self.pgCtl(["-m", "fast", "-w", "stop"])
    }

    /// Starts the server on the same data and port (after `stopServer()`, the end of the outage) and
    /// waits until it accepts connections. A failure carries what the server logged meanwhile.
    ///
    /// The postmaster is started as a child of the test process, not through `pg_ctl start`, so the
    /// test process knows at once if it exits.
    public func startAgain() throws {
        let logPath = self.directory.file("log")
        let descriptor = open(logPath, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        guard descriptor >= 0 else { throw PostgresServerError("cannot open \(logPath): errno \(errno)") }
        let logged = lseek(descriptor, 0, SEEK_END)
        close(descriptor)
        let (executable, arguments) = Self.command(self.binDirectory + "/postgres", [
            "-D", self.directory.file("data"), "-p", String(self.port), "-k", self.directory.path,
            "-c", "listen_addresses=\(self.host)", "-c", "fsync=off", "-c", "max_connections=200",
        ])
        let postmaster = try ChildProcess(
            executable: executable, arguments: arguments, environment: ChildProcess.environment([:]),
            directory: self.directory.path, output: logPath, error: logPath
        )

        func failure(_ what: String) -> PostgresServerError {
            let output = (try? Data(contentsOf: URL(fileURLWithPath: logPath)).dropFirst(Int(max(logged, 0)))) ?? Data()
            let tail = String(decoding: output, as: UTF8.self).split(separator: "\n").suffix(20).joined(separator: "\n")
            return PostgresServerError("the server on port \(self.port) \(what); its log:\n\(tail)")
        }
        let deadline = ContinuousClock.now + .seconds(30)
        while !self.isReady(postmaster: postmaster.pid) {
            guard postmaster.isRunning else { throw failure("exited with status \(postmaster.waitForExit())") }
            guard ContinuousClock.now < deadline else {
                postmaster.signal(SIGTERM)
                throw failure("was not ready within 30 seconds")
            }
            usleep(20_000)
        }
    }

    /// Whether `postmaster.pid` says that this postmaster accepts connections (what `pg_ctl -w` checks).
    private func isReady(postmaster: Int32) -> Bool {
        guard let contents = try? String(contentsOfFile: self.directory.file("data/postmaster.pid"), encoding: .utf8) else { return false }
        let lines = contents.split(separator: "\n", omittingEmptySubsequences: false)
        return lines.count > 7 && lines[0] == String(postmaster) && lines[7].hasPrefix("ready")
    }

    // MARK: Clients

    /// A URL for postgres-nio and similar clients: `postgres://user[:password]@127.0.0.1:PORT/db?sslmode=disable`,
    /// defaulting to the superuser and the initial database.
    public func url(database: String? = nil, user: String? = nil, password: String? = nil) -> String {
        let unreserved = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")
        func encoded(_ component: String) -> String { component.addingPercentEncoding(withAllowedCharacters: unreserved)! }
        let credentials = encoded(user ?? self.user) + (password.map { ":" + encoded($0) } ?? "")
        return "postgres://\(credentials)@\(self.host):\(self.port)/\(encoded(database ?? self.database))?sslmode=disable"
    }

    /// Runs `sql` through `psql -X -A -t -q -v ON_ERROR_STOP=1` as the superuser and returns the rows
    /// (fields joined by `|`, one row a line, no command tags), without the final newline. Throws with
    /// psql's stderr when a statement fails or the server is unreachable.
    @discardableResult
    public func psql(_ sql: String, database: String? = nil) throws -> String {
        var rows = try Self.run(
            self.binDirectory + "/psql",
            ["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-d", self.url(database: database), "-c", sql],
            in: self.directory.path
        )
        while rows.hasSuffix("\n") { rows.removeLast() }
        return rows
    }

    /// Creates the database `name`, owned by the superuser.
    public func createDatabase(_ name: String) throws {
        try self.psql("CREATE DATABASE \"\(name.replacingOccurrences(of: "\"", with: "\"\""))\"")
    }

    // MARK: Programs

    private func pgCtl(_ arguments: [String]) throws {
        try Self.run(self.binDirectory + "/pg_ctl", ["-D", self.directory.file("data")] + arguments, in: self.directory.path)
    }

    /// The command line that runs `executable`: as root, as the OS user `postgres`, since PostgreSQL
    /// refuses to run as root.
    private static func command(_ executable: String, _ arguments: [String]) -> (executable: String, arguments: [String]) {
        guard geteuid() == 0 else { return (executable, arguments) }
        return ("/usr/bin/setpriv", ["--reuid=postgres", "--regid=postgres", "--init-groups", executable] + arguments)
    }

    /// Runs `executable` to completion (see `command`) and returns its stdout.
    @discardableResult
    private static func run(_ executable: String, _ arguments: [String], in directory: String? = nil) throws -> String {
        let command = Self.command(executable, arguments)
        let process = BrokerProcess(command.arguments, executable: command.executable)
        // initdb and pg_ctl fail in a working directory their user cannot enter.
        process.directory = directory
        do { try process.start() } catch { throw PostgresServerError("cannot run \(command.executable): \(error)") }
        let result = process.waitForExit()
        guard result.status == 0 else {
            let name = URL(fileURLWithPath: executable).lastPathComponent
            let stderr = result.stderr.trimmingCharacters(in: .whitespacesAndNewlines)
            throw PostgresServerError("\(name) exited with status \(result.status): \(stderr)")
        }
        return result.stdout
    }

    /// A loopback port that was free a moment ago (the kernel's pick for port 0).
    static func freeLoopbackPort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw PostgresServerError("socket failed: errno \(errno)") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
        }
        guard bound else { throw PostgresServerError("cannot bind a loopback port: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// Why a `PostgresServer` could not start or a command against it failed.
public struct PostgresServerError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
