import Foundation
import Synchronization

/// Shows how far a long import has come, on stderr so stdout stays machine-readable. On a terminal
/// one line is rewritten in place (`\r`) at each percent; otherwise (a log, a CI job) a plain line is
/// written at each tenth, so the output stays short. Imports of at most `minimumTenants` tenants
/// finish too fast to need it and show nothing.
final class ImportProgress: Sendable {
    static let minimumTenants = 1_000

    private let total: Int
    private let verb: String
    private let isTerminal: Bool
    /// The last step shown (a percent on a terminal, a tenth otherwise), and whether the line is done.
    private let state = Mutex((step: 0, finished: false))

    /// Nil when `total` tenants are too few to need progress.
    init?(total: Int, verb: String) {
        guard total > Self.minimumTenants else { return nil }
        self.total = total
        self.verb = verb
        self.isTerminal = isatty(STDERR_FILENO) == 1
    }

    /// Called by the store as it writes (from its own thread); shows only a step not yet shown.
    @Sendable func update(_ written: Int) {
        let step = written * (self.isTerminal ? 100 : 10) / self.total
        let shown = self.state.withLock { state in
            guard step > state.step, !state.finished else { return false }
            state.step = step
            return true
        }
        guard shown else { return }
        let line = "\(self.verb) \(written)/\(self.total) tenants (\(written * 100 / self.total)%)"
        Self.write(self.isTerminal ? "\r" + line : line + "\n")
    }

    /// Ends the line on a terminal; later updates are ignored. Safe to call more than once.
    func finish() {
        let lineIsOpen = self.state.withLock { state in
            defer { state.finished = true }
            return !state.finished && state.step > 0
        }
        if self.isTerminal, lineIsOpen { Self.write("\n") }
    }

    private static func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}
