import ArgumentParser
import BrokerCore
import Foundation

struct TenantImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Upsert every tenant in FILE (format of tenants.example.json) in one transaction: all or nothing."
    )

    @OptionGroup var options: HomeOptions

    @Argument(help: "The tenants file.")
    var file: String

    @Flag(help: "Validate and report what would change; write nothing.")
    var dryRun = false

    /// A refused file: every problem on stderr (`ImportErrorText`), nothing written, exit 1.
    func run() async throws {
        let regions = try Environment.regions()
        let definitions: [TenantDefinition]
        do {
            definitions = try TenantImportFile.load(path: self.file, environment: Environment.variables, regions: regions)
        } catch {
            FileHandle.standardError.write(Data(ImportErrorText.render(error, file: self.file).utf8))
            throw ExitCode.failure
        }
        let dryRun = self.dryRun
        let report = try await self.options.withStore { try await $0.upsert(definitions, now: Clock.unixNow, dryRun: dryRun) }
        let summary = "\(definitions.count) tenants (\(report.tenantsAdded) new, \(report.tenantsUpdated) updated), \(report.credentialsWritten) credentials"
        print(self.dryRun ? "dry run: would import \(summary); nothing written" : "imported \(summary)\(DaemonNotice.reload(self.options))")
    }
}
