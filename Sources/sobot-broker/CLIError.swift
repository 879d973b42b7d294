/// A runtime failure of a command, with the one line shown on stderr (exit code 1).
struct CLIError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}
