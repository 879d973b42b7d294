import Foundation
import TestSupport
import Testing

/// The private PostgreSQL server that database tests run against: it answers, survives an outage
/// with its data, lets a test cut another session off, and leaves nothing behind.
@Suite(.heavy) struct PostgresServerTests {
    @Test func answersQueriesAndCreatesDatabases() async throws {
        guard let server = try await onThread({ try PostgresServer.startOrSkip() }) else { return }
        defer { server.stop() }
        let (one, current) = try await onThread {
            let one = try server.psql("SELECT 1")
            try server.createDatabase("extra")
            return (one, try server.psql("SELECT current_database()", database: "extra"))
        }
        #expect(one == "1")
        #expect(current == "extra")
        #expect(server.url() == "postgres://postgres@127.0.0.1:\(server.port)/postgres?sslmode=disable")
        #expect(server.url(database: "extra", user: "app", password: "p@ss w") == "postgres://app:p%40ss%20w@127.0.0.1:\(server.port)/extra?sslmode=disable")
    }

    @Test func dataOutlivesAnOutage() async throws {
        guard let server = try await onThread({ try PostgresServer.startOrSkip() }) else { return }
        defer { server.stop() }
        let (during, after) = try await onThread {
            try server.psql("CREATE TABLE kept (value text); INSERT INTO kept VALUES ('still here')")
            try server.stopServer()
            let during = Result { try server.psql("SELECT 1") }
            try server.startAgain()
            return (during, try server.psql("SELECT value FROM kept"))
        }
        #expect(throws: PostgresServerError.self, "unreachable while stopped") { try during.get() }
        #expect(after == "still here")
    }

    @Test func anotherSessionCanBeTerminated() async throws {
        guard let server = try await onThread({ try PostgresServer.startOrSkip() }) else { return }
        defer { server.stop() }
        let victim = Task { try await onThread { try server.psql("SET application_name = 'victim'; SELECT pg_sleep(60)") } }
        let count = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'victim'"
        try #require(try await eventually { try await onThread { try server.psql(count) } == "1" })
        let terminate = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'victim'"
        #expect(try await onThread { try server.psql(terminate) } == "t")
        let error = await #expect(throws: PostgresServerError.self) { try await victim.value }
        #expect(error?.description.contains("terminating connection due to administrator command") == true, "\(String(describing: error))")
    }

    @Test func stopRemovesEverythingAndMayBeRepeated() async throws {
        guard let server = try await onThread({ try PostgresServer.startOrSkip() }) else { return }
        let directory = server.directory.path
        #expect(FileManager.default.fileExists(atPath: directory + "/data/PG_VERSION"))
        try await onThread {
            server.stopAndWait()
            server.stopAndWait()
        }
        #expect(!FileManager.default.fileExists(atPath: directory))
        let afterwards = try await onThread { Result { try server.psql("SELECT 1") } }
        #expect(throws: PostgresServerError.self, "nothing listens any more") { try afterwards.get() }
    }
}
