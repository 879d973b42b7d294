import ArgumentParser
import BrokerCore

struct InitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create the home (0700), the database (or the PostgreSQL schema) and the master key (0600). Never overwrites a key."
    )

    @OptionGroup var options: HomeOptions
    @OptionGroup var output: JSONOutputOption

    func run() async throws {
        let home = self.options.brokerHome
        switch try self.options.storeLocation {
        case .sqlite:
            let report = try home.initialize()
            self.report(home, database: home.paths.database, createdKey: report.createdKey)
        case .postgres(let url):
            let report = try home.initialize(createDatabase: false)
            try await self.options.withPostgres(url) { store in
                try await store.migrate()
                try await store.recordSealingKeyIfUnset()
            }
            self.report(home, database: "\(url.redacted()) (schema up to date)", createdKey: report.createdKey)
        }
    }

    private func report(_ home: BrokerHome, database: String, createdKey: Bool) {
        self.output.emit(
            """
            home      \(home.paths.home)
            database  \(database)
            key       \(home.paths.masterKey) (\(createdKey ? "created" : "kept existing"))
            """,
            json: ["home": .string(home.paths.home), "database": .string(database), "key_file": .string(home.paths.masterKey), "key_created": .bool(createdKey)]
        )
    }
}
