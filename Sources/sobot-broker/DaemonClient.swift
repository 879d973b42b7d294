import BrokerCore
import SobotBrokerClient

/// Calls the running daemon for the client commands through `SobotBrokerClient`, turning error
/// replies into one-line failures.
struct DaemonClient {
    let client: SobotBrokerClient

    init(options: HomeOptions) {
        self.client = SobotBrokerClient(socketPath: options.daemonSocket, timeoutSeconds: 120)
    }

    init(client: SobotBrokerClient) {
        self.client = client
    }

    /// - Parameter regionFlag: the command takes the region as `--region`, so a reply that asks for
    ///   the `region` param says so in the command's own terms.
    func call(_ method: String, params: JSONValue? = nil, regionFlag: Bool = false) throws -> JSONValue {
        do throws(BrokerCallError) {
            return try self.client.callBlocking(method, params: params)
        } catch {
            switch error {
            case .rejected(let code, var message, _):
                if regionFlag, message.hasSuffix("; pass region") { message += " with --region" }
                throw CLIError("\(message) (\(code))")
            case .unavailable(let reason): throw CLIError(reason)
            case .badReply(let reason): throw CLIError("unreadable reply from the daemon: \(reason)")
            }
        }
    }
}
