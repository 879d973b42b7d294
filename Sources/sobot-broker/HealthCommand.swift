import ArgumentParser
import BrokerCore

struct HealthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health",
        abstract: "Exit 0 when the daemon answers and its store is reachable, 1 otherwise; prints one line."
    )

    @OptionGroup var options: HomeOptions
    @OptionGroup var output: JSONOutputOption

    func run() throws {
        let health: JSONValue
        do {
            health = try DaemonClient(options: self.options).call("broker.health")
        } catch {
            try self.unhealthy("\(error)", health: nil)
        }
        let store = health["store"]?.stringValue ?? "?"
        guard health["status"] == "ok", health["store_reachable"] != false else {
            try self.unhealthy("the daemon answers but its \(store) store does not", health: health)
        }
        if self.output.json {
            var answer = health.objectValue ?? [:]
            answer["healthy"] = true
            self.output.emit("", json: answer)
            return
        }
        print(
            "ok: \(health["tenants"]?.integerValue ?? 0) tenants, \(health["tokens_valid"]?.integerValue ?? 0) valid tokens, "
                + "store \(store), up \(DurationText.short(Double(health["uptime_s"]?.integerValue ?? 0)))"
        )
    }

    /// Exit 1 with one line on stderr; with `--json`, the reason (and what the daemon said) on stdout too.
    private func unhealthy(_ reason: String, health: JSONValue?) throws -> Never {
        if self.output.json {
            self.output.emit("", json: ["healthy": false, "reason": .string(reason), "daemon": health ?? .null])
        }
        throw CLIError("unhealthy: \(reason)")
    }
}
