import ArgumentParser
import BrokerCore

struct HealthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health",
        abstract: "Exit 0 when the daemon answers and its store is reachable, 1 otherwise; prints one line."
    )

    @OptionGroup var options: HomeOptions

    func run() throws {
        let health: JSONValue
        do {
            health = try DaemonClient(options: self.options).call("broker.health")
        } catch {
            throw CLIError("unhealthy: \(error)")
        }
        let store = health["store"]?.stringValue ?? "?"
        guard health["status"] == "ok", health["store_reachable"] != false else {
            throw CLIError("unhealthy: the daemon answers but its \(store) store does not")
        }
        print(
            "ok: \(health["tenants"]?.integerValue ?? 0) tenants, \(health["tokens_valid"]?.integerValue ?? 0) valid tokens, "
                + "store \(store), up \(DurationText.short(Double(health["uptime_s"]?.integerValue ?? 0)))"
        )
    }
}
