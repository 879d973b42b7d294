import BrokerCore

/// A setting's value and where it came from: errors name the culprit, and the daemon logs at start
/// which options are in force and why.
struct ResolvedSetting<Value: Sendable>: Sendable {
    let value: Value
    let source: SettingSource

    /// How an error names this setting: the flag, the variable, or the file, line and key.
    var culprit: String {
        switch self.source {
        case .flag(let name), .environment(let name), .file(let name): name
        case .builtIn: "the default"
        }
    }

    /// `reason` as an error about this setting: a flag's own messages already name it; other sources
    /// are named in front.
    func explaining(_ reason: String) -> String {
        if case .flag = self.source { return reason }
        return "\(self.culprit): \(reason)"
    }

    /// A short origin for the start-up log; nil for a default.
    var origin: String? {
        switch self.source {
        case .flag: "flag"
        case .environment(let name): name
        case .file: "config"
        case .builtIn: nil
        }
    }

    /// Flag, then environment, then config file, then default: the documented order.
    static func resolve(
        flag: Value?,
        key: String,
        environment: (name: String, value: Value?)? = nil,
        file config: BrokerConfigFile,
        reading read: (BrokerConfigFile) -> Value?,
        default: Value
    ) -> ResolvedSetting {
        if let flag { return ResolvedSetting(value: flag, source: .flag("--" + key)) }
        if let environment, let value = environment.value { return ResolvedSetting(value: value, source: .environment(environment.name)) }
        if let value = read(config) { return ResolvedSetting(value: value, source: .file("config file " + config.culprit(key))) }
        return ResolvedSetting(value: `default`, source: .builtIn)
    }
}

/// Where a setting's value came from.
enum SettingSource: Sendable {
    case flag(String)
    case environment(String)
    /// The culprit as `config file PATH:LINE: key`.
    case file(String)
    case builtIn
}
