import PostgresNIO

extension DatabaseURL {
    /// The pool configuration for this URL, with the password from the URL or `PGPASSWORD` in
    /// `environment`. The application name defaults to `sobot-broker`, so operators can tell the
    /// broker's sessions apart in `pg_stat_activity`.
    public func clientConfiguration(environment: [String: String]) -> PostgresClient.Configuration {
        let password = self.password(environment: environment)
        var configuration: PostgresClient.Configuration
        switch self.endpoint {
        case .tcp(let host, let port):
            let tls: PostgresClient.Configuration.TLS =
                switch self.tlsConfiguration {
                case nil: .disable
                case let tls? where self.sslMode == .prefer: .prefer(tls)
                case let tls?: .require(tls)
                }
            configuration = .init(host: host, port: port, username: self.user, password: password, database: self.database, tls: tls)
        case .unixSocket(let directory, let port):
            configuration = .init(unixSocketPath: Self.socketPath(directory: directory, port: port), username: self.user, password: password, database: self.database)
        }
        configuration.options.additionalStartupParameters = self.startupParameters
        return configuration
    }

    /// The configuration of a single connection for this URL (the daemon's `LISTEN` connection).
    /// Throws when the TLS context cannot be built (the system trust roots cannot be loaded).
    public func connectionConfiguration(environment: [String: String]) throws -> PostgresConnection.Configuration {
        let password = self.password(environment: environment)
        var configuration: PostgresConnection.Configuration
        switch self.endpoint {
        case .tcp(let host, let port):
            let tls: PostgresConnection.Configuration.TLS =
                switch self.tlsConfiguration {
                case nil: .disable
                case let tls? where self.sslMode == .prefer: .prefer(try NIOSSLContext(configuration: tls))
                case let tls?: .require(try NIOSSLContext(configuration: tls))
                }
            configuration = .init(host: host, port: port, username: self.user, password: password, database: self.database, tls: tls)
        case .unixSocket(let directory, let port):
            configuration = .init(unixSocketPath: Self.socketPath(directory: directory, port: port), username: self.user, password: password, database: self.database)
        }
        configuration.options.additionalStartupParameters = self.startupParameters
        return configuration
    }

    /// The socket file libpq would use: `<directory>/.s.PGSQL.<port>`.
    public var socketPath: String? {
        guard case .unixSocket(let directory, let port) = self.endpoint else { return nil }
        return Self.socketPath(directory: directory, port: port)
    }

    private static func socketPath(directory: String, port: Int) -> String {
        (directory.hasSuffix("/") ? directory : directory + "/") + ".s.PGSQL.\(port)"
    }

    /// TLS as libpq's `sslmode` means it; nil for no TLS. Only `verify-full` verifies the certificate
    /// (chain to the system trust roots, and the host name): libpq's `prefer` and `require` do not.
    var tlsConfiguration: TLSConfiguration? {
        var tls = TLSConfiguration.makeClientConfiguration()
        switch self.sslMode {
        case .disable:
            return nil
        case .prefer, .require:
            tls.certificateVerification = .none
        case .verifyFull:
            tls.certificateVerification = .fullVerification
            tls.trustRoots = .default
        }
        return tls
    }

    private var startupParameters: [(String, String)] {
        [("application_name", self.applicationName ?? "sobot-broker")]
    }
}
