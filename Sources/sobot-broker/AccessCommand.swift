import ArgumentParser
import BrokerCore
import BrokerServer
import Foundation

struct AccessCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "access",
        abstract: "Let other local users or groups call the daemon (by default only its own user and root can).",
        subcommands: [Grant.self, List.self, Revoke.self, AccessKeyCommand.self]
    )

    /// `--uid | --gid | --user | --group`: exactly one.
    struct SubjectOptions: ParsableArguments {
        @Option(help: "A numeric user id.") var uid: UInt32?
        @Option(help: "A numeric group id (matched against the caller's primary and supplementary groups).") var gid: UInt32?
        @Option(help: "A user name.") var user: String?
        @Option(help: "A group name (matched against the caller's primary and supplementary groups, as `id` shows them).") var group: String?

        func validate() throws {
            guard [self.uid != nil, self.gid != nil, self.user != nil, self.group != nil].filter({ $0 }).count == 1 else {
                throw ValidationError("give exactly one of --uid, --gid, --user, --group")
            }
        }

        func resolve() throws -> AccessRule.Subject {
            if let uid = self.uid { return .uid(uid) }
            if let gid = self.gid { return .gid(gid) }
            if let user = self.user {
                guard let entry = getpwnam(user) else { throw CLIError("no such user: \(user)") }
                return .uid(entry.pointee.pw_uid)
            }
            guard let name = self.group, let entry = getgrnam(name) else { throw CLIError("no such group: \(self.group ?? "")") }
            return .gid(entry.pointee.gr_gid)
        }
    }

    /// Checks `--tenant` (a tenant id or `*`; for grants also a prefix pattern like `client-*`) and
    /// returns the patterns of `--methods`, as every grant and client key takes them. Each pattern must
    /// name a method the broker serves, a namespace of one (`marketing.*`), or `*`: a misspelt method
    /// would otherwise grant nothing, silently.
    static func scope(tenant: String, methods: String, tenantPatterns: Bool = false) throws -> [String] {
        if tenantPatterns {
            guard AccessRule.isValidTenantPattern(tenant) else {
                throw ValidationError("--tenant must be a tenant id, '*', or a tenant-id prefix ending in '*' (client-*)")
            }
        } else {
            guard tenant == "*" || Identifier.isValidTenantID(tenant) else { throw ValidationError("--tenant must be a tenant id or '*'") }
        }
        guard let patterns = MethodPattern.parseList(methods) else {
            throw ValidationError("--methods must be a comma-separated list like 'token.get,marketing.*'")
        }
        let known = BrokerMethods.names.union(BuiltinModules.all.flatMap { $0.methods.map(\.name) })
        for pattern in patterns where pattern != "*" && !known.contains(where: { MethodPattern.allows([pattern], method: $0) }) {
            let namespaces = Set(known.compactMap { $0.split(separator: ".").first.map { "\($0).*" } }).sorted()
            throw ValidationError("--methods: \(pattern) names no method the broker serves (namespaces: \(namespaces.joined(separator: ", ")))")
        }
        return patterns
    }

    struct Grant: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Allow a user or group to call methods for a tenant ('*' for all).")

        @OptionGroup var options: HomeOptions
        @OptionGroup var subject: SubjectOptions
        @OptionGroup var output: JSONOutputOption

        @Option(help: "A tenant id, '*' for every tenant, or a prefix pattern: 'client-*' is every tenant whose id starts with client-.")
        var tenant: String

        @Option(help: "Comma-separated methods or namespaces, e.g. 'token.get,marketing.*' (default: token.get).")
        var methods: String = "token.get"

        @Flag(help: "Grant for a tenant not imported yet (about to be).")
        var force = false

        func validate() throws {
            _ = try AccessCommand.scope(tenant: self.tenant, methods: self.methods, tenantPatterns: true)
        }

        func run() async throws {
            let subject = try self.subject.resolve()
            let patterns = try AccessCommand.scope(tenant: self.tenant, methods: self.methods, tenantPatterns: true)
            let rule = AccessRule(subject: subject, tenant: self.tenant, methods: patterns)
            let tenant = self.tenant
            let force = self.force
            try await self.options.withStore { store in
                if tenant != "*", !force {
                    if let prefix = rule.tenantPrefix {
                        guard try await store.summaries().contains(where: { $0.id.hasPrefix(prefix) }) else {
                            throw CLIError("no tenant matches \(tenant): import one first, or grant with --force for tenants about to be imported")
                        }
                    } else if try await store.credentialKeys(ofTenant: tenant).isEmpty {
                        throw CLIError("no tenant \(tenant): import it first, or grant with --force for a tenant about to be imported")
                    }
                }
                try await store.grant(rule, now: Clock.unixNow)
            }
            let daemon = DaemonNotice.ask(self.options)
            var granted = List.json(rule).objectValue ?? [:]
            granted["daemon"] = daemon.json
            self.output.emit("granted \(subject) \(patterns.joined(separator: ",")) for tenant \(self.tenant)\(daemon.suffix)", json: granted)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List access rules.")

        @OptionGroup var options: HomeOptions

        @Flag(help: "Print the rules as JSON: {rules:[{subject:{kind, id, name?}, tenant, methods}]}.")
        var json = false

        func run() async throws {
            let rules = try await self.options.withStore { try await $0.accessRules() }
            if self.json {
                print(JSONWriter.prettyString(["rules": .array(rules.map(Self.json))]))
                return
            }
            guard !rules.isEmpty else {
                print("no rules: only the daemon's own user and root may call it")
                return
            }
            var rows = [["SUBJECT", "TENANT", "METHODS"]]
            for rule in rules {
                rows.append([Self.name(of: rule.subject), rule.tenant, rule.methods.joined(separator: ",")])
            }
            print(Table.render(rows))
        }

        static func json(_ rule: AccessRule) -> JSONValue {
            let account = Self.account(of: rule.subject)
            var subject: [String: JSONValue] = ["kind": .string(account.kind), "id": .integer(Int64(account.id))]
            if let name = account.name { subject["name"] = .string(name) }
            return ["subject": .object(subject), "tenant": .string(rule.tenant), "methods": .array(rule.methods.map(JSONValue.string))]
        }

        static func name(of subject: AccessRule.Subject) -> String {
            let account = Self.account(of: subject)
            guard let name = account.name else { return "\(account.kind) \(account.id)" }
            return "\(account.kind == "uid" ? "user" : "group") \(name) (\(account.id))"
        }

        /// The subject's kind (`uid` or `gid`), id, and the system's name for it if it has one: what
        /// both listings show.
        private static func account(of subject: AccessRule.Subject) -> (kind: String, id: UInt32, name: String?) {
            switch subject {
            case .uid(let id): ("uid", id, getpwuid(id).map { String(cString: $0.pointee.pw_name) })
            case .gid(let id): ("gid", id, getgrgid(id).map { String(cString: $0.pointee.gr_name) })
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a user's or group's rules (for one tenant, or all).")

        @OptionGroup var options: HomeOptions
        @OptionGroup var subject: SubjectOptions
        @OptionGroup var output: JSONOutputOption

        @Option(help: "Only the rule for this tenant ('*' included).")
        var tenant: String?

        func run() async throws {
            let subject = try self.subject.resolve()
            let tenant = self.tenant
            let removed = try await self.options.withStore { try await $0.revoke(subject, tenant: tenant) }
            // Revoking what is not there leaves the wanted state: said, not an error (scripts stay idempotent).
            let daemon = removed > 0 ? DaemonNotice.ask(self.options) : ("", .null)
            let subjectJSON = List.json(AccessRule(subject: subject, tenant: "*", methods: []))["subject"] ?? .null
            self.output.emit(
                removed > 0 ? "revoked \(removed) rule\(removed == 1 ? "" : "s") of \(subject)\(daemon.suffix)" : "\(subject) has no matching rule; nothing revoked",
                json: ["subject": subjectJSON, "revoked": .integer(Int64(removed)), "daemon": daemon.json]
            )
        }
    }
}
