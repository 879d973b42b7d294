/// When a token is refreshed in the background, and how long to wait after a failure.
public enum RefreshSchedule {
    /// The fixed point in `policy.refreshWindow` for `key`: a hash of the key spreads tenants evenly
    /// across the window, so thousands of tokens issued together are refreshed at an even rate.
    public static func spreadFraction(for key: TokenKey) -> Double {
        // FNV-1a: stable across runs and platforms, unlike Hasher.
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key.tenant.utf8 + [0] + key.region.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        hash ^= hash >> 33
        hash = hash &* 0xff51_afd7_ed55_8ccd
        hash ^= hash >> 33
        return Double(hash >> 11) / Double(1 << 53)
    }

    /// The Unix time at which `token` should be refreshed: always inside the refresh window.
    public static func refreshTime(
        for token: LiveToken,
        key: TokenKey,
        policy: TokenPolicy,
        jitter: Double = Double.random(in: -1...1)
    ) -> Double {
        let spread = Self.spreadFraction(for: key) + jitter * policy.refreshJitter
        let clamped = min(max(spread, 0), 1)
        let window = policy.refreshWindow
        let fraction = window.lowerBound + clamped * (window.upperBound - window.lowerBound)
        return token.issuedAt + fraction * token.lifetime
    }

    /// Full-jitter exponential backoff: uniform in [0, min(cap, base * 2^(failures-1))].
    public static func backoff(afterFailures failures: Int, policy: TokenPolicy, random: Double = Double.random(in: 0...1)) -> Double {
        let exponent = Double(min(max(failures - 1, 0), 30))
        let ceiling = min(policy.backoffCap, policy.backoffBase * pow2(exponent))
        return random * ceiling
    }

    private static func pow2(_ exponent: Double) -> Double {
        var result = 1.0
        for _ in 0..<Int(exponent) { result *= 2 }
        return result
    }
}
