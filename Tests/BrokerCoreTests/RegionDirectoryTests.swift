import BrokerCore
import Testing

/// `SOBOT_BROKER_REGION_URLS` is read strictly: a typo never becomes some region's base URL.
@Suite struct RegionDirectoryTests {
    @Test func wellFormedEntriesOverrideAndAddRegions() throws {
        let directory = try RegionDirectory(overrides: "sg=http://127.0.0.1:8081/, eu=https://eu.example.com/open,v6=http://[::1]:9000")
        #expect(directory.baseURL(for: "sg") == "http://127.0.0.1:8081")
        #expect(directory.baseURL(for: "eu") == "https://eu.example.com/open")
        #expect(directory.baseURL(for: "v6") == "http://[::1]:9000")
        #expect(directory.baseURL(for: "us") == RegionDirectory.builtIn["us"])
    }

    @Test(arguments: [
        ("sg=http://127.0.0.1:8081;eu=http://127.0.0.1:8082", "not a base URL"),
        ("sg=http://a.example.com,sg=http://b.example.com", "given twice"),
        ("sg=http://a.example.com,", "expected region=url"),
        ("sg", "expected region=url"),
        ("SG=http://a.example.com", "region names"),
        ("sg=ftp://a.example.com", "not a base URL"),
        ("sg=http://", "not a base URL"),
        ("sg=http://user@a.example.com", "not a base URL"),
        ("sg=http://a.example.com/x?y=1", "not a base URL"),
        ("sg=http://a.example.com/#top", "not a base URL"),
        ("sg=http://a example.com", "not a base URL"),
        ("sg=http://a.example.com:0", "not a base URL"),
        ("sg=http://a.example.com:65536", "not a base URL"),
        ("sg=http://a.example.com:80a", "not a base URL"),
        ("sg=http://[::1", "not a base URL"),
        ("sg=http://-a.example.com", "not a base URL"),
    ])
    func malformedListsAreRefusedNamingTheEntry(_ text: String, _ reason: String) {
        #expect {
            _ = try RegionDirectory(overrides: text)
        } throws: { error in
            let message = "\(error)"
            return message.contains(reason) && message.hasPrefix("SOBOT_BROKER_REGION_URLS entry") && !message.contains("\n")
        }
    }
}
