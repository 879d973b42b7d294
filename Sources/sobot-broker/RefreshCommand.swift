import ArgumentParser
import BrokerCore
import Foundation

struct RefreshCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "refresh",
        abstract: "Clear a key's backoff and fetch its token now (or every failing key's, with --failing).",
        discussion: """
            Coordinated like any refresh: a fetch already under way is joined, and in a cluster one
            broker calls Sobot while the others adopt its token. Prints one line per key, never a
            token; exits 1 when any key could not be refreshed.
            """
    )

    @OptionGroup var options: HomeOptions

    @Argument(help: "Tenant id.")
    var tenant: String?

    @Option(help: "Region (may be left out when the tenant has one).")
    var region: String?

    @Flag(help: "Refresh every key whose last fetch failed.")
    var failing = false

    @Flag(help: "Print the daemon's answer as JSON.")
    var json = false

    func validate() throws {
        if self.failing {
            guard self.tenant == nil, self.region == nil else { throw ValidationError("--failing takes no tenant or --region") }
        } else if self.tenant == nil {
            throw ValidationError("name a tenant, or use --failing")
        }
    }

    func run() throws {
        let client = DaemonClient(options: self.options)
        let entries: [JSONValue]
        if let tenant = self.tenant {
            var params: [String: JSONValue] = ["tenant": .string(tenant)]
            if let region = self.region { params["region"] = .string(region) }
            do {
                entries = [try client.call("token.refresh", params: .object(params), regionFlag: true)]
            } catch {
                throw CLIError("\(tenant)\(self.region.map { "/\($0)" } ?? ""): \(error)")
            }
        } else {
            entries = try client.call("broker.refresh_failing")["refreshed"]?.arrayValue ?? []
        }
        if self.json {
            print(JSONWriter.prettyString(.array(entries)))
        } else if entries.isEmpty {
            print("no failing keys")
        }
        let now = Double(Clock.unixNow)
        var failed = 0
        for entry in entries {
            let key = "\(entry["tenant"]?.stringValue ?? "?")/\(entry["region"]?.stringValue ?? "?")"
            if let error = entry["error"] {
                failed += 1
                let line = "\(key): \(error["message"]?.stringValue ?? "failed") (\(error["code"]?.integerValue ?? 0))\n"
                FileHandle.standardError.write(Data(line.utf8))
            } else if !self.json {
                print("\(key): refreshed, expires \(entry["expires_at"]?.doubleValue.map { TimeText.expiry($0, now: now) } ?? "?")")
            }
        }
        if failed > 0 { throw CLIError("\(failed) of \(entries.count) keys could not be refreshed") }
    }
}
