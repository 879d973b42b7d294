/// A misbehaviour the simulator can be told to show on every endpoint, to test the broker's
/// handling of a failing or lying upstream.
public enum SimulatorFault: Sendable, Equatable {
    case none
    /// Answer with this HTTP status and a non-JSON body.
    case httpStatus(UInt)
    /// Accept the request and never answer.
    case hang
    /// Answer 200 with a body that is not JSON.
    case garbage
    /// Answer 200 with this `ret_code`.
    case returnCode(String)
    /// Answer normally after this delay.
    case latency(milliseconds: Int)

    /// Parses the admin endpoint's names: `none`, `http500`, `hang`, `garbage`, `ret:999999`, `latency:250`.
    public init?(name: String) {
        switch name {
        case "none": self = .none
        case "hang": self = .hang
        case "garbage": self = .garbage
        default:
            if name.hasPrefix("http"), let status = UInt(name.dropFirst(4)) {
                self = .httpStatus(status)
            } else if name.hasPrefix("ret:") {
                self = .returnCode(String(name.dropFirst(4)))
            } else if name.hasPrefix("latency:"), let milliseconds = Int(name.dropFirst(8)) {
                self = .latency(milliseconds: milliseconds)
            } else {
                return nil
            }
        }
    }
}
