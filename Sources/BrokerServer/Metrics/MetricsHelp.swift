import BrokerCore

/// swift-metrics carries no help text, so the exporter adds `# HELP` lines for the broker's metrics
/// itself, each just before its metric's `# TYPE` line.
enum MetricsHelp {
    static func annotate(_ text: String) -> String {
        var output = ""
        output.reserveCapacity(text.utf8.count + 1024)
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# TYPE "), let name = line.dropFirst(7).split(separator: " ").first, let help = BrokerMetrics.help[String(name)] {
                output += "# HELP \(name) \(help)\n"
            }
            output += line
            output += "\n"
        }
        // The split keeps the text's final newline as an empty last line; one newline is enough.
        if output.hasSuffix("\n\n") { output.removeLast() }
        return output
    }
}
