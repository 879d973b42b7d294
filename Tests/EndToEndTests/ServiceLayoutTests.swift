import BrokerCore
import Foundation
import TestSupport
import Testing

/// The shipped `contrib/systemd/` files, run as written without systemd: the unit's `ExecStartPre`
/// and `ExecStart` under its user and group (through `setpriv`) with the umask, environment and
/// directories (modes and owners) the unit and tmpfiles.d declare; then a member of the client group
/// (a supplementary group of the caller, granted by a group rule) connects, a non-member cannot, the
/// admin CLI works as the service user, and readiness, reload and stop go over the notify socket as
/// `Type=notify` expects.
///
/// Stand-ins, so the test changes nothing on the host: uid/gid 61001 for the `sobot-broker` user,
/// the existing group `users` for `sobot-clients`, and a temporary directory for `/`.
@Suite(.heavy) struct ServiceLayoutTests {
    static let contrib = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("contrib/systemd").path

    /// `Key=Value` lines of a unit file's `[Service]` section, in order (keys may repeat).
    static func serviceSection(_ text: String) -> [(key: String, value: String)] {
        var inService = false
        var entries: [(String, String)] = []
        for line in text.split(separator: "\n").map(String.init) where !line.hasPrefix("#") {
            if line.hasPrefix("[") {
                inService = line == "[Service]"
            } else if inService, let equals = line.firstIndex(of: "=") {
                entries.append((String(line[..<equals]), String(line[line.index(after: equals)...])))
            }
        }
        return entries
    }

    @Test func theShippedUnitRunsAsWrittenAndItsClientGroupReachesTheSocket() async throws {
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"), let users = getgrnam("users") else {
            print("skipped \(#function): needs root, /usr/bin/setpriv and the group users to act as the unit's identities")
            return
        }
        let clientGID = users.pointee.gr_gid
        let unit = Self.serviceSection(try String(contentsOfFile: Self.contrib + "/sobot-broker.service", encoding: .utf8))
        func values(_ key: String) -> [String] { unit.filter { $0.key == key }.map(\.value) }
        let sysusers = try String(contentsOfFile: Self.contrib + "/sobot-broker.sysusers", encoding: .utf8)
        let tmpfiles = try String(contentsOfFile: Self.contrib + "/sobot-broker.tmpfiles", encoding: .utf8)

        // The files agree with each other.
        #expect(values("Type") == ["notify"] && values("User") == ["sobot-broker"] && values("Group") == ["sobot-broker"])
        #expect(sysusers.contains("u sobot-broker ") && sysusers.contains("g sobot-clients ") && sysusers.contains("m sobot-broker sobot-clients"))
        let declared = tmpfiles.split(separator: "\n").filter { $0.hasPrefix("d ") }.map { $0.split(separator: " ").map(String.init) }
        let runtimeMode = try #require(declared.first { $0[1] == "/run/sobot-broker" }?[2])
        let stateMode = try #require(declared.first { $0[1] == "/var/lib/sobot-broker" }?[2])
        #expect(values("RuntimeDirectoryMode") == [runtimeMode] && values("StateDirectoryMode") == [stateMode])
        #expect(values("ExecReload") == ["/bin/kill -HUP $MAINPID"])

        // The unit's world, under a temporary root.
        let root = TemporaryDirectory("unit")
        chmod(root.path, 0o755)
        func relocate(_ text: String) -> String {
            text.replacingOccurrences(of: "/usr/local/bin/sobot-broker", with: BrokerExecutable.path)
                .replacingOccurrences(of: "/var/lib/", with: root.path + "/var/lib/")
                .replacingOccurrences(of: "/run/", with: root.path + "/run/")
                .replacingOccurrences(of: "sobot-clients", with: "users")
        }
        let serviceUID: UInt32 = 61001
        for entry in declared {
            let path = relocate(entry[1])
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            chmod(FileIO.directoryName(of: path), 0o755)
            chmod(FileIO.directoryName(of: FileIO.directoryName(of: path)), 0o755)
            chmod(path, mode_t(entry[2], radix: 8)!)
            chown(path, serviceUID, serviceUID)
        }
        var environment: [String: String] = [:]
        for assignment in values("Environment") {
            let parts = assignment.split(separator: "=", maxSplits: 1).map(String.init)
            environment[parts[0]] = relocate(parts[1])
        }
        let notify = try NotifyListener(path: root.file("notify"))
        environment["NOTIFY_SOCKET"] = notify.path
        let umask = try #require(values("UMask").first)
        // As systemd runs a command: the unit's user, group and supplementary groups (sysusers' `m`
        // line), no new privileges, the unit's umask.
        func asService(_ commandLine: String) -> BrokerProcess {
            let words = relocate(commandLine).split(separator: " ").map(String.init)
            return BrokerProcess(
                ["--reuid=\(serviceUID)", "--regid=\(serviceUID)", "--groups=\(clientGID)", "--no-new-privs", "/bin/sh", "-c", "umask \(umask) && exec \"$0\" \"$@\""] + words,
                environment: environment,
                executable: "/usr/bin/setpriv"
            )
        }

        let initialize = asService(try #require(values("ExecStartPre").first))
        try await initialize.launch()
        let initialized = try await initialize.exit()
        #expect(initialized.status == 0, "init as the service user: \(initialized.stderr)")

        let daemon = asService(try #require(values("ExecStart").first))
        try await daemon.launch()
        defer { if daemon.isRunning { daemon.signal(SIGKILL) } }
        #expect(await notify.waitFor("READY=1", timeout: 30), "readiness over NOTIFY_SOCKET: \(daemon.stderrSoFar)")

        let socket = try #require(environment["SOBOT_BROKER_SOCKET"])
        var info = stat()
        #expect(stat(socket, &info) == 0 && info.st_mode & 0o777 == 0o660 && info.st_gid == clientGID && info.st_uid == serviceUID)

        // The client group gets a rule; its members have it as a supplementary group only (primary 61002),
        // which the daemon reads with SO_PEERGROUPS.
        let grant = asService("/usr/local/bin/sobot-broker access grant --group users --tenant * --methods token.get")
        try await grant.launch()
        let granted = try await grant.exit()
        #expect(granted.status == 0 && granted.stdout.contains("the running daemon reloaded"), "\(granted.stdout) \(granted.stderr)")

        func healthAsClient(uid: UInt32, groups: [UInt32]) async throws -> CommandResult {
            let groupFlag = groups.isEmpty ? "--clear-groups" : "--groups=" + groups.map(String.init).joined(separator: ",")
            let client = BrokerProcess(
                ["--reuid=\(uid)", "--regid=\(uid)", groupFlag, BrokerExecutable.path, "health"],
                environment: ["SOBOT_BROKER_SOCKET": socket],
                executable: "/usr/bin/setpriv"
            )
            try await client.launch()
            return try await client.exit()
        }
        let memberResult = try await healthAsClient(uid: 61002, groups: [clientGID])
        #expect(memberResult.status == 0, "a member of the client group connects: \(memberResult.stderr)")
        let strangerResult = try await healthAsClient(uid: 61003, groups: [])
        #expect(strangerResult.status == 1, "anyone else cannot: \(strangerResult.stdout)")

        let admin = asService("/usr/local/bin/sobot-broker tenant list")
        try await admin.launch()
        let adminResult = try await admin.exit()
        #expect(adminResult.status == 0 && adminResult.stdout.contains("no tenants"), "the admin CLI as the service user: \(adminResult.stderr)")

        let reload = try #require(values("ExecReload").first).replacingOccurrences(of: "$MAINPID", with: String(daemon.pid)).split(separator: " ").map(String.init)
        let reloader = BrokerProcess(Array(reload.dropFirst()), executable: reload[0])
        try await reloader.launch()
        #expect(try await reloader.exit().status == 0)
        #expect(await notify.waitFor("RELOADING=1", timeout: 30), "\(daemon.stderrSoFar)")
        #expect(await notify.waitFor("READY=1", timeout: 30), "ready again after the reload")

        daemon.signal(SIGTERM)
        #expect(await notify.waitFor("STOPPING=1", timeout: 30))
        let stopped = try await daemon.exit()
        #expect(stopped.status == 0, "\(stopped.stderr)")
        #expect(!FileManager.default.fileExists(atPath: socket))
    }

    /// Outside systemd (no `NOTIFY_SOCKET`) nothing is sent; with it, readiness comes once the socket
    /// answers. Runs without root.
    @Test func readinessIsSentOnlyOnceTheSocketAnswers() async throws {
        let daemon = try await RunningDaemon(tenants: 1, start: false)
        let notify = try NotifyListener(path: daemon.directory.file("notify"))
        var environment = daemon.environment
        environment["NOTIFY_SOCKET"] = notify.path
        let process = BrokerProcess(["serve"], environment: environment)
        try await process.launch()
        daemon.process = process
        #expect(await notify.waitFor("READY=1", timeout: 30), "\(process.stderrSoFar)")
        #expect(try await daemon.call("broker.health").get()["status"] == "ok", "the socket answers by the time READY=1 is sent")
        await daemon.shutdown()
    }
}
