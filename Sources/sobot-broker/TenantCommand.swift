import ArgumentParser
import BrokerCore

struct TenantCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tenant",
        abstract: "Onboard and manage tenants (Sobot accounts) and their per-region credentials.",
        subcommands: [TenantAddCommand.self, TenantImportCommand.self, TenantListCommand.self, TenantRemoveCommand.self]
    )
}

struct TenantAddCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Add or replace one credential. The app_key comes from stdin or an environment variable, never argv."
    )

    @OptionGroup var options: HomeOptions
    @OptionGroup var output: JSONOutputOption

    @Argument(help: "Tenant id: 1-64 of [a-z0-9_-].")
    var id: String

    @Option(help: "Region name (sg, us, or one added with SOBOT_BROKER_REGION_URLS).")
    var region: String

    @Option(help: "The Sobot appid for this region.")
    var appid: String

    @Option(help: "Display name (kept as it is when omitted).")
    var name: String?

    @Flag(help: "Read the app_key from the first line of standard input.")
    var appKeyStdin = false

    @Option(help: "Read the app_key from this environment variable.")
    var appKeyEnv: String?

    func validate() throws {
        guard Identifier.isValidTenantID(self.id) else { throw ValidationError("tenant id must be 1-64 characters of [a-z0-9_-]") }
        guard Identifier.isValidRegion(self.region) else { throw ValidationError("region must be 1-32 characters of [a-z0-9-]") }
        guard CredentialRules.isValidAppID(self.appid) else { throw ValidationError("--appid \(CredentialRules.appIDRule)") }
        guard self.appKeyStdin != (self.appKeyEnv != nil) else {
            throw ValidationError("give exactly one of --app-key-stdin or --app-key-env VAR")
        }
    }

    func run() async throws {
        let regions = try self.options.regions()
        guard regions.baseURL(for: self.region) != nil else {
            throw CLIError(regions.unknownRegionMessage(self.region))
        }
        let appKey = try self.readAppKey()
        guard CredentialRules.isValidAppKey(appKey) else { throw CLIError("app_key \(CredentialRules.appKeyRule)") }
        let definition = TenantDefinition(
            id: self.id,
            name: self.name,
            credentials: [CredentialDefinition(region: self.region, appid: self.appid, appKey: appKey)]
        )
        let report = try await self.options.withStore { try await $0.upsert([definition], now: Clock.unixNow, dryRun: false) }
        let daemon = DaemonNotice.ask(self.options)
        let added = report.tenantsAdded == 1
        self.output.emit(
            "\(added ? "added" : "updated") \(self.id)/\(self.region) (appid \(self.appid))\(daemon.suffix)",
            json: [
                "tenant": .string(self.id), "region": .string(self.region), "appid": .string(self.appid), "tenant_added": .bool(added),
                "daemon": daemon.json,
            ]
        )
    }

    private func readAppKey() throws -> String {
        if let variable = self.appKeyEnv {
            guard let value = Environment.variables[variable] else { throw CLIError("environment variable \(variable) is not set") }
            return value
        }
        guard let line = readLine(strippingNewline: true), !line.isEmpty else {
            throw CLIError("no app_key on standard input (expected one line)")
        }
        return line.hasSuffix("\r") ? String(line.dropLast()) : line
    }
}

struct TenantListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List tenants, regions, appids and stored-token state. Never shows a key or a token."
    )

    @OptionGroup var options: HomeOptions

    @Argument(help: "Only these tenants.")
    var tenants: [String] = []

    @Option(help: "Only regions whose stored token is valid, expired or missing (the daemon's own view, with stale and failing, is `status`).")
    var state: TenantListing.StoredState?

    @Option(help: "Only this region.")
    var region: String?

    @Flag(help: "Print JSON (the shape of the tenant.list method).")
    var json = false

    func run() async throws {
        let now = Clock.unixNow
        let filter = TenantListing.Filter(tenants: Set(self.tenants), state: self.state, region: self.region)
        let summaries = try await self.options.withStore { try await $0.summaries() }.compactMap { filter.apply(to: $0, now: now) }
        if self.json {
            print(JSONWriter.prettyString(TenantListing.json(summaries, now: now)))
            return
        }
        guard !summaries.isEmpty else {
            print(filter.isEmpty ? "no tenants; add one with `sobot-broker tenant add` or `sobot-broker tenant import FILE`" : "no tenant matches")
            return
        }
        var rows = [["TENANT", "NAME", "REGION", "APPID", "TOKEN"]]
        for tenant in summaries {
            for region in tenant.regions {
                rows.append([tenant.id, tenant.name ?? "", region.region, region.appid, TenantListing.tokenText(region.tokenExpiresAt, now: now)])
            }
        }
        print(Table.render(rows))
    }
}

struct TenantRemoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Remove a tenant, or one of its regions, with its tokens; a removed tenant's access rules and client keys go with it."
    )

    @OptionGroup var options: HomeOptions
    @OptionGroup var output: JSONOutputOption

    @Argument(help: "Tenant id.")
    var id: String

    @Option(help: "Remove only this region.")
    var region: String?

    func run() async throws {
        let (id, region) = (self.id, self.region)
        let removed = try await self.options.withStore { try await $0.remove(tenant: id, region: region) }
        let target = self.region.map { "\(self.id)/\($0)" } ?? self.id
        var what = [Self.count(removed.credentials, "credential")]
        if removed.accessRules > 0 { what.append(Self.count(removed.accessRules, "access rule")) }
        if removed.clientKeys > 0 { what.append(Self.count(removed.clientKeys, "client key")) }
        let daemon = DaemonNotice.ask(self.options)
        self.output.emit(
            "removed \(target) (\(what.joined(separator: ", ")))\(daemon.suffix)",
            json: [
                "tenant": .string(self.id), "region": self.region.map(JSONValue.string) ?? .null,
                "credentials": .integer(Int64(removed.credentials)), "access_rules": .integer(Int64(removed.accessRules)),
                "client_keys": .integer(Int64(removed.clientKeys)), "daemon": daemon.json,
            ]
        )
    }

    private static func count(_ number: Int, _ noun: String) -> String {
        "\(number) \(noun)\(number == 1 ? "" : "s")"
    }
}
