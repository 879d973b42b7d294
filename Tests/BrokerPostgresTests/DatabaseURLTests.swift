import BrokerPostgres
import Testing

@Suite struct DatabaseURLTests {
    @Test func aFullURLIsParsed() throws {
        let url = try DatabaseURL(parsing: "postgresql://broker:s%40cret@db.example.com:6543/sobot?sslmode=verify-full&application_name=edge%201")
        #expect(url.user == "broker")
        #expect(url.hasPassword)
        #expect(url.password(environment: ["PGPASSWORD": "other"]) == "s@cret")
        #expect(url.endpoint == .tcp(host: "db.example.com", port: 6543))
        #expect(url.database == "sobot")
        #expect(url.sslMode == .verifyFull)
        #expect(url.applicationName == "edge 1")
    }

    @Test func defaultsFollowLibpq() throws {
        let url = try DatabaseURL(parsing: "postgres://broker@10.0.0.7")
        #expect(url.endpoint == .tcp(host: "10.0.0.7", port: 5432))
        #expect(url.database == "broker")
        #expect(url.sslMode == .prefer)
        #expect(url.applicationName == nil)
        #expect(!url.hasPassword)
        #expect(url.password(environment: [:]) == nil)
        #expect(url.password(environment: ["PGPASSWORD": "from-env"]) == "from-env")
        #expect(url.password(environment: ["PGPASSWORD": ""]) == nil)
    }

    @Test func anIPv6HostIsBracketed() throws {
        let url = try DatabaseURL(parsing: "postgres://broker@[::1]:5433/db")
        #expect(url.endpoint == .tcp(host: "::1", port: 5433))
        #expect(url.redacted() == "postgres://broker@[::1]:5433/db")
    }

    @Test(arguments: ["postgres://broker@/db?host=/var/run/postgresql", "postgres://broker@%2Fvar%2Frun%2Fpostgresql/db"])
    func aSocketDirectoryIsAHost(_ text: String) throws {
        let url = try DatabaseURL(parsing: text)
        #expect(url.endpoint == .unixSocket(directory: "/var/run/postgresql", port: 5432))
        #expect(url.socketPath == "/var/run/postgresql/.s.PGSQL.5432")
        #expect(url.clientConfiguration(environment: [:]).unixSocketPath == "/var/run/postgresql/.s.PGSQL.5432")
    }

    @Test(arguments: DatabaseURL.SSLMode.allCases)
    func everySSLModeIsAccepted(_ mode: DatabaseURL.SSLMode) throws {
        let url = try DatabaseURL(parsing: "postgres://broker@db/sobot?sslmode=\(mode.rawValue)")
        #expect(url.sslMode == mode)
        let configuration = url.clientConfiguration(environment: [:])
        #expect(configuration.host == "db")
        _ = try url.connectionConfiguration(environment: [:])
    }

    @Test(arguments: [
        ("mysql://broker@db/sobot", DatabaseURLError.scheme),
        ("postgres://db/sobot", .missingUser),
        ("postgres://:pw@db/sobot", .missingUser),
        ("postgres://broker@/sobot", .missingHost),
        ("postgres://broker@db:0/sobot", .invalidPort),
        ("postgres://broker@db:65536/sobot", .invalidPort),
        ("postgres://broker@db:54x/sobot", .invalidPort),
        ("postgres://broker@db:/sobot", .invalidPort),
        ("postgres://broker@db/so/bot", .nestedDatabasePath),
        ("postgres://broker@db%20x/sobot", .invalidHost),
        ("postgres://broker@[db]/sobot", .invalidHost),
        ("postgres://broker@[::g]/sobot", .invalidHost),
        ("postgres://broker@db/sobot?host=/tmp", .conflictingHost),
        ("postgres://broker@db/sobot?sslmode=allow", .invalidSSLMode("allow")),
        ("postgres://broker@db/sobot?sslmode=verify-ca", .invalidSSLMode("verify-ca")),
        ("postgres://broker@db/sobot?connect_timeout=3", .unknownParameter("connect_timeout")),
        ("postgres://broker@db/sobot?sslmode", .parameterWithoutValue("sslmode")),
        ("postgres://broker@db/sobot?sslmode=disable&sslmode=require", .duplicateParameter("sslmode")),
        ("postgres://bro%zzker@db/sobot", .invalidEncoding(component: "user name")),
        ("postgres://broker@db/so%00bot", .invalidEncoding(component: "database name")),
        ("postgres://broker@db/sobot#x", .fragment),
    ])
    func aBadURLIsRefusedNamingThePart(_ text: String, _ expected: DatabaseURLError) {
        #expect(throws: expected) { try DatabaseURL(parsing: text) }
        #expect(!expected.description.contains("\n"))
    }

    /// Passwords that are malformed, or whose reserved characters were not encoded, so that parsing
    /// fails somewhere after them: no error may hold any part of them (`Yx4` before, `Q7zK9` after).
    @Test(arguments: [
        "postgres://broker:Yx4/Q7zK9@db/sobot",
        "postgres://broker:Yx4?Q7zK9@db/sobot",
        "postgres://broker:Yx4#Q7zK9@db/sobot",
        "postgres://broker:Yx4%zzQ7zK9@db/sobot",
        "postgres://broker:Yx4@Q7zK9@db:99999/sobot",
        "postgres://broker:Yx4?sslmode=Q7zK9@db/sobot",
        "postgres://broker:Yx4?Q7zK9=x@db/sobot",
        "postgres://broker:Yx4:Q7zK9@db/so/bot",
    ])
    func anErrorNeverHoldsThePassword(_ text: String) throws {
        do {
            _ = try DatabaseURL(parsing: text)
            Issue.record("accepted a malformed URL")
        } catch {
            #expect(!error.description.contains("Yx4"))
            #expect(!error.description.contains("Q7zK9"))
        }
    }

    @Test func redactionHidesThePasswordEverywhere() throws {
        let url = try DatabaseURL(parsing: "postgres://broker:hunter2@db/sobot?sslmode=require")
        #expect(url.redacted() == "postgres://broker:***@db:5432/sobot?sslmode=require")
        #expect(!"\(url)".contains("hunter2"))
        #expect(!String(reflecting: url).contains("hunter2"))
        var dumped = ""
        dump(url, to: &dumped)
        #expect(!dumped.contains("hunter2"))
    }

    @Test func theConfigurationCarriesThePasswordAndTheApplicationName() throws {
        let url = try DatabaseURL(parsing: "postgres://broker@db/sobot?application_name=edge")
        let configuration = url.clientConfiguration(environment: ["PGPASSWORD": "from-env"])
        #expect(configuration.password == "from-env")
        #expect(configuration.username == "broker")
        #expect(configuration.database == "sobot")
        #expect(configuration.options.additionalStartupParameters.contains { $0 == ("application_name", "edge") })
    }
}
