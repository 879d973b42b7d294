import ArgumentParser
import BrokerCore

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the daemon's view: a summary of every state, then each key's token, next refresh or retry, last error.",
        discussion: """
            Filters combine: `status acme beta --state failing --region sg` shows the failing sg keys
            of acme and beta. The summary line always counts every key the daemon holds.
            """
    )

    @OptionGroup var options: HomeOptions

    @Argument(help: "Only these tenants.")
    var tenants: [String] = []

    @Option(help: "Only keys in this state: valid, stale, expired, missing or failing (the last fetch failed).")
    var state: StatusFilter.State?

    @Option(help: "Only keys of this region.")
    var region: String?

    @Flag(help: "Print the summary and the keys shown as JSON.")
    var json = false

    func run() throws {
        let filter = StatusFilter(tenants: Set(self.tenants), state: self.state, region: self.region)
        let client = DaemonClient(options: self.options)
        if self.json {
            print(JSONWriter.prettyString(try StatusReport.json(client: client, filter: filter)))
        } else {
            print(try StatusReport.render(client: client, filter: filter))
        }
    }
}

/// Which keys `status` shows.
struct StatusFilter {
    enum State: String, CaseIterable, ExpressibleByArgument {
        case valid, stale, expired, missing, failing
    }

    var tenants: Set<String> = []
    var state: State?
    var region: String?

    func admits(_ entry: JSONValue) -> Bool {
        if !self.tenants.isEmpty, !self.tenants.contains(entry["tenant"]?.stringValue ?? "") { return false }
        if let region = self.region, entry["region"]?.stringValue != region { return false }
        switch self.state {
        case nil: return true
        case .failing?: return StatusReport.isFailing(entry)
        case let state?: return entry["state"]?.stringValue == state.rawValue
        }
    }
}

/// The `status` report, shared with `demo`.
enum StatusReport {
    /// A key whose last fetch failed; it may still hold a token that is served meanwhile.
    static func isFailing(_ entry: JSONValue) -> Bool {
        (entry["failures"]?.integerValue ?? 0) > 0 || entry["last_error"] != nil
    }

    /// `keys: 6 · valid 4 · stale 1 · expired 0 · missing 1 · failing 2`, over every key held.
    static func summary(of entries: [JSONValue]) -> [(String, Int)] {
        var counts = StatusFilter.State.allCases.map { ($0.rawValue, 0) }
        for entry in entries {
            if let index = counts.firstIndex(where: { $0.0 == entry["state"]?.stringValue }) { counts[index].1 += 1 }
            if Self.isFailing(entry) { counts[counts.count - 1].1 += 1 }
        }
        return [("keys", entries.count)] + counts
    }

    static func json(client: DaemonClient, filter: StatusFilter) throws -> JSONValue {
        let status = try client.call("broker.status")
        let entries = status["tokens"]?.arrayValue ?? []
        var report: [String: JSONValue] = [
            "now": status["now"] ?? .null,
            "summary": .object(Dictionary(uniqueKeysWithValues: Self.summary(of: entries).map { ($0.0, .integer(Int64($0.1))) })),
            "tokens": .array(entries.filter(filter.admits).map { entry in
                var entry = entry.objectValue ?? [:]
                entry["failing"] = .bool(Self.isFailing(.object(entry)))
                return .object(entry)
            }),
        ]
        if let members = status["members"] { report["members"] = members }
        return .object(report)
    }

    static func render(client: DaemonClient, filter: StatusFilter = StatusFilter()) throws -> String {
        let health = try client.call("broker.health")
        let status = try client.call("broker.status")
        let now = Double(status["now"]?.integerValue ?? Clock.unixNow)
        var lines = [
            "sobot-broker \(health["version"]?.stringValue ?? "?"): up \(DurationText.short(Double(health["uptime_s"]?.integerValue ?? 0))), "
                + "\(health["tenants"]?.integerValue ?? 0) tenants, \(health["tokens_valid"]?.integerValue ?? 0) valid tokens"
        ]
        let members = status["members"]?.arrayValue
        if let members {
            lines.append("cluster: \(members.count) brokers alive (store: postgres)")
            for member in members {
                lines.append(
                    "  \(member["id"]?.stringValue ?? "?")  \(member["host"]?.stringValue ?? "?") pid \(member["pid"]?.integerValue ?? 0)  "
                        + "\(member["version"]?.stringValue ?? "?")  seen \(member["seen_s_ago"]?.integerValue ?? 0)s ago"
                )
            }
        }
        let entries = status["tokens"]?.arrayValue ?? []
        let shown = entries.filter(filter.admits)
        lines.append(
            Self.summary(of: entries).map { "\($0.0) \($0.1)" }.joined(separator: " · ")
                + (shown.count == entries.count ? "" : " (showing \(shown.count))")
        )
        var header = ["TENANT", "REGION", "STATE", "EXPIRES", "NEXT", "LAST ERROR"]
        if members != nil { header.append("REFRESHED BY") }
        var rows = [header]
        for entry in shown {
            let failing = Self.isFailing(entry)
            let failures = entry["failures"]?.integerValue ?? 0
            rows.append([
                entry["tenant"]?.stringValue ?? "?",
                entry["region"]?.stringValue ?? "?",
                (entry["state"]?.stringValue ?? "?") + (failing ? ", failing (\(failures)×)" : ""),
                entry["expires_at"]?.doubleValue.map { TimeText.expiry($0, now: now) } ?? "-",
                entry["next_refresh_at"]?.doubleValue.map { TimeText.next($0, now: now, retry: failing) } ?? "-",
                entry["last_error"]?.stringValue ?? "-",
            ] + (members == nil ? [] : [entry["refreshed_by"]?.stringValue ?? "-"]))
        }
        lines.append(Table.render(rows))
        return lines.joined(separator: "\n")
    }
}
