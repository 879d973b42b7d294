import Foundation
import BrokerCore

/// Plain-text tables for terminal output.
enum Table {
    static func render(_ rows: [[String]]) -> String {
        guard let header = rows.first else { return "" }
        var widths = header.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        return rows.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[index] - cell.count)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}

/// Durations like `23h59m`, `4m10s`, `12s`.
enum DurationText {
    /// `seconds` may come from a reply: one no Int holds (or not finite) is shown, not trapped on.
    static func short(_ seconds: Double) -> String {
        guard let total = Int(exactly: seconds.rounded(.down)) else { return seconds.isNaN ? "?" : "\(seconds)s" }
        if total < 0 { return "-" + Self.short(-seconds) }
        let hours = total / 3600
        let minutes = total % 3600 / 60
        let rest = total % 60
        if hours > 0 { return "\(hours)h\(String(format2: minutes))m" }
        if minutes > 0 { return "\(minutes)m\(String(format2: rest))s" }
        return "\(rest)s"
    }
}

extension String {
    fileprivate init(format2 value: Int) {
        self = value < 10 ? "0\(value)" : "\(value)"
    }
}

/// Times in `status`: always relative and absolute (UTC) together, and never a negative "in".
enum TimeText {
    static func absolute(_ unix: Double) -> String {
        guard unix.isFinite, abs(unix) < 1e11 else { return "?" }
        return Date(timeIntervalSince1970: unix.rounded(.down)).ISO8601Format()
    }

    /// `in 23h59m (2026-12-01T13:02:03Z)`, or `expired 4m10s ago (…)`.
    static func expiry(_ unix: Double, now: Double) -> String {
        unix >= now
            ? "in \(DurationText.short(unix - now)) (\(Self.absolute(unix)))"
            : "expired \(DurationText.short(now - unix)) ago (\(Self.absolute(unix)))"
    }

    /// `refresh in 11h58m (…)`, `retry in 25s (…)`, or `retry now` once due.
    static func next(_ unix: Double, now: Double, retry: Bool) -> String {
        let word = retry ? "retry" : "refresh"
        return unix <= now ? "\(word) now" : "\(word) in \(DurationText.short(unix - now)) (\(Self.absolute(unix)))"
    }
}

enum Clock {
    static var unixNow: Int64 { Int64(SystemClock().unixNow()) }
}

/// A token shown to a person in demo output: enough to recognise it, not enough to use it.
enum SecretMask {
    static func mask(_ secret: String) -> String {
        "\(secret.prefix(4))… (\(secret.count) chars)"
    }
}

#if canImport(Glibc)
import Glibc
#endif

enum StandardError {
    /// One line on stderr: notes that must not mix with a command's data on stdout.
    static func line(_ text: String) {
        let bytes = Array((text + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    }
}

enum StandardOutput {
    /// Pushes buffered output now: `print` is block-buffered when stdout is a pipe.
    static func flush() {
        fflush(nil)
    }
}
