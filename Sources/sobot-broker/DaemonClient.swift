import BrokerCore
import BrokerServer

/// Calls the running daemon for the client commands, turning error replies into one-line failures.
struct DaemonClient {
    let client: BrokerClient

    init(options: HomeOptions) {
        self.client = BrokerClient(socketPath: options.paths.socket)
    }

    func call(_ method: String, params: JSONValue? = nil) throws -> JSONValue {
        switch try self.client.call(method, params: params) {
        case .success(let result): return result
        case .failure(let error): throw CLIError("\(error.message) (\(error.code))")
        }
    }
}
