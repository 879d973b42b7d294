/// The broker's release version, reported by `broker.health` and `--version`.
public enum BrokerVersion {
    public static let current = "0.1.0"
}
