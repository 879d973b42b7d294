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

    @Flag(help: "Validate, show what would change per tenant, and write nothing.")
    var dryRun = false

    @Flag(help: "Print JSON on stdout: every error of a refused file, or the result (and a dry run's changes).")
    var json = false

    /// A refused file: every problem on stderr (`ImportErrorText`; with `--json` on stdout), nothing
    /// written, exit 1.
    func run() async throws {
        let regions = try self.options.regions()
        let definitions: [TenantDefinition]
        do {
            definitions = try TenantImportFile.load(path: self.file, environment: Environment.variables, regions: regions)
        } catch {
            if self.json {
                print(JSONWriter.prettyString(ImportJSON.errors(error, file: self.file)))
            } else {
                FileHandle.standardError.write(Data(ImportErrorText.render(error, file: self.file).utf8))
            }
            throw ExitCode.failure
        }
        let progress = ImportProgress(total: definitions.count, verb: self.dryRun ? "checking" : "importing")
        let (report, diff) = try await self.write(definitions, progress: progress)
        if self.json {
            let daemon = self.dryRun ? nil : DaemonNotice.reloadOutcome(self.options)
            print(JSONWriter.prettyString(ImportJSON.result(tenants: definitions.count, report: report, diff: diff, daemon: daemon)))
            return
        }
        if let diff { print(ImportDiffText.render(diff), terminator: "") }
        let summary = "\(definitions.count) tenants (\(report.tenantsAdded) new, \(report.tenantsUpdated) updated), \(report.credentialsWritten) credentials"
        print(self.dryRun ? "dry run: would import \(summary); nothing written" : "imported \(summary)\(DaemonNotice.reload(self.options))")
    }

    /// Upserts (or, for a dry run, compares and checks) `definitions`; the progress line is finished
    /// however this ends, so what follows starts on a line of its own.
    private func write(_ definitions: [TenantDefinition], progress: ImportProgress?) async throws -> (UpsertReport, ImportDiff?) {
        defer { progress?.finish() }
        let dryRun = self.dryRun
        return try await self.options.withStore { store in
            let diff = dryRun ? try await Self.diff(definitions, against: store) : nil
            let report = try await store.upsert(definitions, now: Clock.unixNow, dryRun: dryRun, progress: progress?.update)
            return (report, diff)
        }
    }

    /// What importing `definitions` would change in `store`; app keys are compared inside the store.
    private static func diff(_ definitions: [TenantDefinition], against store: any BrokerStore) async throws -> ImportDiff {
        let appKeys = Dictionary(
            definitions.flatMap { tenant in tenant.credentials.map { (TokenKey(tenant: tenant.id, region: $0.region), $0.appKey) } },
            uniquingKeysWith: { _, last in last }
        )
        let sameAppKeys = try await store.credentialsWithSameAppKey(appKeys)
        return ImportDiff(definitions: definitions, stored: try await store.summaries(), sameAppKeys: sameAppKeys)
    }
}
