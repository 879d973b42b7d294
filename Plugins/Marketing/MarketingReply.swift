import BrokerModuleSDK

/// Normalises Sobot's marketing replies: counters and statuses become numbers, ids become strings
/// (they can exceed 64 bits), and names holding `{dc_…}` placeholders are flagged, untouched.
enum MarketingReply {
    struct Page: Sendable {
        var items: [JSONValue]
        var pageNo: Int64
        var pageSize: Int64
        var pageCount: Int64
        var totalCount: Int64
    }

    static func page(from reply: JSONValue, endpoint: MarketingEndpoint) throws(ModuleError) -> Page {
        guard let items = (reply["items"] ?? .array([])).arrayValue else {
            throw .upstreamUnavailable("unreadable reply: items is not an array")
        }
        // Page numbers and counts are never negative; one beyond Int64 is not an integer here at all.
        func count(_ name: String) throws(ModuleError) -> Int64 {
            guard let number = reply[name]?.integerValue, number >= 0 else {
                throw .upstreamUnavailable("unreadable reply: \(name) is missing or not a non-negative integer")
            }
            return number
        }
        return Page(
            items: items.map { Self.normalize($0, endpoint: endpoint) },
            pageNo: try count("page_no"),
            pageSize: try count("page_size"),
            pageCount: try count("page_count"),
            totalCount: try count("total_count")
        )
    }

    static func normalize(_ item: JSONValue, endpoint: MarketingEndpoint) -> JSONValue {
        guard case .object(var fields) = item else { return item }
        for name in endpoint.idFields {
            switch fields[name] {
            case .integer(let number): fields[name] = .string(String(number))
            case .bigInteger(let digits): fields[name] = .string(digits)
            default: break
            }
        }
        if let status = fields["status"]?.integerValue { fields["status"] = .integer(status) }
        let placeholders = endpoint.nameFields.flatMap { fields[$0]?.stringValue.map(Self.placeholders(in:)) ?? [] }
        fields["multilingual"] = .bool(!placeholders.isEmpty)
        if !placeholders.isEmpty { fields["placeholders"] = .array(placeholders.map(JSONValue.string)) }
        return .object(fields)
    }

    /// The keys of `{dc_…}` placeholders in `text`, in order (`"a{dc_x}b"` → `["dc_x"]`).
    static func placeholders(in text: String) -> [String] {
        var keys: [String] = []
        var index = text.startIndex
        while let open = text[index...].firstIndex(of: "{") {
            let afterOpen = text.index(after: open)
            guard let close = text[afterOpen...].firstIndex(of: "}") else { break }
            let key = text[afterOpen..<close]
            if key.hasPrefix("dc_"), key.count > 3, key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) {
                keys.append(String(key))
                index = text.index(after: close)
            } else {
                index = afterOpen
            }
        }
        return keys
    }

    static func json(_ page: Page, extra: [String: JSONValue] = [:]) -> JSONValue {
        var object: [String: JSONValue] = [
            "items": .array(page.items),
            "page_no": .integer(page.pageNo),
            "page_size": .integer(page.pageSize),
            "page_count": .integer(page.pageCount),
            "total_count": .integer(page.totalCount),
        ]
        object.merge(extra) { _, new in new }
        return .object(object)
    }
}
