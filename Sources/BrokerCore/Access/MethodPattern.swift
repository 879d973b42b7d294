/// The method patterns access rules and client keys hold: `*`, a full name (`token.get`), or a
/// namespace (`marketing.*`).
public enum MethodPattern {
    /// Whether any of `patterns` allows `method`.
    public static func allows(_ patterns: [String], method: String) -> Bool {
        patterns.contains { pattern in
            pattern == "*" || pattern == method || (pattern.hasSuffix(".*") && method.hasPrefix(pattern.dropLast()))
        }
    }

    /// The patterns of a comma-separated list such as `token.get,marketing.*` (blanks around each
    /// ignored), or nil when it names none or one holds anything but letters, digits and `._*-`.
    public static func parseList(_ text: String) -> [String]? {
        let patterns = text.split(separator: ",").map { Self.trimmingBlanks($0) }.filter { !$0.isEmpty }
        guard !patterns.isEmpty, patterns.allSatisfy({ $0.allSatisfy { $0.isLetter || $0.isNumber || "._*-".contains($0) } }) else {
            return nil
        }
        return patterns
    }

    private static func trimmingBlanks(_ text: Substring) -> String {
        var text = text
        while text.first == " " || text.first == "\t" { text.removeFirst() }
        while text.last == " " || text.last == "\t" { text.removeLast() }
        return String(text)
    }
}
