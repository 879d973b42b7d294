import ArgumentParser
import BrokerCore

/// `--json`, for every command that prints data: the same facts as the text, as one JSON document on
/// stdout, for scripts.
struct JSONOutputOption: ParsableArguments {
    @Flag(help: "Print the result as JSON.")
    var json = false

    /// Prints `text`, or with `--json` the JSON document instead.
    func emit(_ text: @autoclosure () -> String, json document: @autoclosure () -> [String: JSONValue]) {
        print(self.json ? JSONWriter.prettyString(.object(document())) : text())
    }
}

extension DaemonNotice {
    /// A reload's outcome as text to append (`; the running daemon reloaded`) and as a JSON value
    /// (null when no daemon runs): asked once, shown either way.
    static func ask(_ options: HomeOptions) -> (suffix: String, json: JSONValue) {
        let outcome = Self.reloadOutcome(options)
        return (outcome.map { "; \($0)" } ?? "", outcome.map(JSONValue.string) ?? .null)
    }
}
