import BrokerCore

/// The fixed marketing data the simulator serves: 5 catalogs and 37 subjects, with ids as large
/// as Sobot's (beyond Int64) and `{dc_…}` multilingual placeholders in some names.
enum MarketingDataSet {
    struct Catalog {
        let catalogid: String
        let name: String
        let status: Int64
    }

    struct Subject {
        let catalogid: String
        let subjectid: String
        let subject: String
        let status: Int64
    }

    static let catalogs: [Catalog] = [
        Catalog(catalogid: "1123412432341234123412431", name: "Spring campaign{dc_spring}", status: 1),
        Catalog(catalogid: "1123412432341234123412432", name: "Loyalty", status: 1),
        Catalog(catalogid: "1123412432341234123412433", name: "Win-back{dc_winback}", status: 1),
        Catalog(catalogid: "1123412432341234123412434", name: "Onboarding", status: 1),
        Catalog(catalogid: "1123412432341234123412435", name: "Retired promotions", status: -1),
    ]

    static let subjects: [Subject] = (1...37).map { number in
        Subject(
            catalogid: Self.catalogs[(number - 1) % 4].catalogid,
            subjectid: "11234124723412341234\(10000 + number)",
            subject: number % 5 == 0 ? "Theme \(number){dc_theme_\(number)}" : "Theme \(number)",
            status: number % 9 == 0 ? -1 : 1
        )
    }

    /// A page of `items` in Sobot's reply shape. Counters come back in mixed types (numbers and
    /// strings), as the real API's documentation shows, so clients must normalise them.
    static func page(of items: [JSONValue], pageNo: Int, pageSize: Int) -> JSONValue {
        let pageCount = items.isEmpty ? 0 : (items.count + pageSize - 1) / pageSize
        let start = min((pageNo - 1) * pageSize, items.count)
        let end = min(start + pageSize, items.count)
        return [
            "items": .array(Array(items[start..<end])),
            "page_count": .integer(Int64(pageCount)),
            "page_no": .integer(Int64(pageNo)),
            "page_size": .string(String(pageSize)),
            "total_count": .string(String(items.count)),
            "ret_code": "000000",
            "ret_msg": "success",
        ]
    }

    static func catalogPage(filter: [String: JSONValue], pageNo: Int, pageSize: Int) -> JSONValue {
        let items = Self.catalogs.filter { catalog in
            Self.matches(filter["catalogid"], catalog.catalogid) && Self.matches(filter["status"], catalog.status)
        }.map { catalog -> JSONValue in
            ["catalogid": .bigInteger(catalog.catalogid), "name": .string(catalog.name), "status": .string(String(catalog.status))]
        }
        return Self.page(of: items, pageNo: pageNo, pageSize: pageSize)
    }

    static func subjectPage(filter: [String: JSONValue], pageNo: Int, pageSize: Int) -> JSONValue {
        let items = Self.subjects.filter { subject in
            Self.matches(filter["catalogid"], subject.catalogid) && Self.matches(filter["subjectid"], subject.subjectid)
                && Self.matches(filter["status"], subject.status)
        }.map { subject -> JSONValue in
            [
                "catalogid": .bigInteger(subject.catalogid), "subjectid": .bigInteger(subject.subjectid),
                "subject": .string(subject.subject), "status": .integer(subject.status),
            ]
        }
        return Self.page(of: items, pageNo: pageNo, pageSize: pageSize)
    }

    private static func matches(_ filter: JSONValue?, _ id: String) -> Bool {
        switch filter {
        case .none, .some(.null): true
        case .some(.string(let text)): text == id
        case .some(.bigInteger(let digits)): digits == id
        case .some(.integer(let number)): String(number) == id
        default: false
        }
    }

    private static func matches(_ filter: JSONValue?, _ status: Int64) -> Bool {
        guard let filter, filter != .null else { return true }
        return filter.integerValue == status
    }
}
