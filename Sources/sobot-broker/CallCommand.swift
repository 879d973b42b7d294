import ArgumentParser
import BrokerCore

struct CallCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "call",
        abstract: "Send one JSON-RPC request to the daemon and print the result as JSON (a text result as text); exit 1 on an error reply."
    )

    @OptionGroup var options: HomeOptions

    @Argument(help: "Method name, e.g. broker.health or marketing.catalog.query.")
    var method: String

    @Argument(help: "Params as a JSON object or array, e.g. '{\"tenant\":\"acme\"}'.")
    var params: String?

    func validate() throws {
        guard let text = self.params else { return }
        guard let parsed = try? JSONParser.parse(Array(text.utf8)) else { throw ValidationError("PARAMS_JSON is not valid JSON") }
        switch parsed {
        case .object, .array: break
        default: throw ValidationError("PARAMS_JSON must be a JSON object or array")
        }
    }

    func run() throws {
        let params = try self.params.map { try JSONParser.parse(Array($0.utf8)) }
        let result = try DaemonClient(options: self.options).call(self.method, params: params)
        // A text result (broker.metrics' exposition) is printed as the text itself, not a JSON string.
        if case .string(let text) = result {
            print(text, terminator: text.hasSuffix("\n") ? "" : "\n")
        } else {
            print(JSONWriter.prettyString(result))
        }
    }
}
