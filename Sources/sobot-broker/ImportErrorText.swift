import BrokerCore

/// How `tenant import` shows a refused file on stderr: one line per problem, in file order,
/// compiler style, so editors can jump to it; a count first when there are several; at most
/// `shownProblems` of them, then how many more there are.
///
/// ```
/// tenants.json: 3 errors
/// tenants.json:7:15: tenants[1].credentials[0].region (tenant beta): unknown region "eu" (known: …)
/// tenants.json:12:9: tenants[2].id: must be 1-64 characters of [a-z0-9_-]
/// tenants.json: cannot read file (…)
/// ```
enum ImportErrorText {
    static let shownProblems = 20

    static func render(_ error: ImportError, file: String) -> String {
        let problems = error.problems
        var lines: [String] = []
        if problems.count > 1 { lines.append("\(file): \(problems.count) errors") }
        for problem in problems.prefix(Self.shownProblems) {
            // A problem's description starts with its `line:column: ` when it has one.
            lines.append(problem.position == nil ? "\(file): \(problem)" : "\(file):\(problem)")
        }
        let more = problems.count - Self.shownProblems
        if more > 0 { lines.append("\(file): ... and \(more) more error\(more == 1 ? "" : "s")") }
        return lines.map { $0 + "\n" }.joined()
    }
}
