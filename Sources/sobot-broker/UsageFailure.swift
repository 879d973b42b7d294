import ArgumentParser
import Foundation

/// A usage error shown as the contract asks: one line on stderr, exit 64, no usage text after it
/// (which would bury the culprit under forty lines of help).
struct UsageFailure: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}

extension UsageFailure {
    /// Prints the line and becomes the exit code ArgumentParser exits with.
    var exit: ExitCode {
        FileHandle.standardError.write(Data("Error: \(self.description)\n".utf8))
        return ExitCode(64)
    }
}
