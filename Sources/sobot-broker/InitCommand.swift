import ArgumentParser
import BrokerCore

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create the home (0700), the database and the master key (0600). Never overwrites a key."
    )

    @OptionGroup var options: HomeOptions

    func run() throws {
        let home = self.options.brokerHome
        let report = try home.initialize()
        print("home      \(home.paths.home)")
        print("database  \(home.paths.database)")
        print("key       \(home.paths.masterKey) (\(report.createdKey ? "created" : "kept existing"))")
    }
}
