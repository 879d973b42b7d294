import ArgumentParser
import BrokerCore

struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Ask the running daemon for a tenant's token and print it."
    )

    @OptionGroup var options: HomeOptions

    @Argument(help: "Tenant id.")
    var id: String

    @Option(help: "Region (may be left out when the tenant has one).")
    var region: String?

    @Flag(help: "Print the whole result as JSON (tenant, region, token, expires_at, expires_in).")
    var json = false

    func run() throws {
        var params: [String: JSONValue] = ["tenant": .string(self.id)]
        if let region = self.region { params["region"] = .string(region) }
        let result = try DaemonClient(options: self.options).call("token.get", params: .object(params), regionFlag: true)
        if self.json {
            print(JSONWriter.prettyString(result))
        } else {
            guard let token = result["token"]?.stringValue else { throw CLIError("the daemon's reply has no token") }
            print(token)
        }
    }
}
