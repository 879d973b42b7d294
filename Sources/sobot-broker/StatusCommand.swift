import ArgumentParser
import BrokerCore

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the daemon's view: tenants, token state, next refresh, upstream errors."
    )

    @OptionGroup var options: HomeOptions

    func run() throws {
        print(try StatusReport.render(client: DaemonClient(options: self.options)))
    }
}

/// The `status` table, shared with `demo`.
enum StatusReport {
    static func render(client: DaemonClient) throws -> String {
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
        var header = ["TENANT", "REGION", "STATE", "EXPIRES IN", "NEXT REFRESH", "LAST ERROR"]
        if members != nil { header.append("REFRESHED BY") }
        var rows = [header]
        for entry in status["tokens"]?.arrayValue ?? [] {
            let relative: (String) -> String = { field in
                entry[field]?.doubleValue.map { DurationText.short($0 - now) } ?? "-"
            }
            rows.append([
                entry["tenant"]?.stringValue ?? "?",
                entry["region"]?.stringValue ?? "?",
                entry["state"]?.stringValue ?? "?",
                relative("expires_at"),
                relative("next_refresh_at"),
                entry["last_error"]?.stringValue ?? "-",
            ] + (members == nil ? [] : [entry["refreshed_by"]?.stringValue ?? "-"]))
        }
        lines.append(Table.render(rows))
        return lines.joined(separator: "\n")
    }
}
