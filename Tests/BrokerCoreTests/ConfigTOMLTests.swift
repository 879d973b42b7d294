@testable import BrokerCore
import Testing

/// The TOML subset the config file is read in: what it accepts, and where it says a file is wrong.
@Suite struct ConfigTOMLTests {
    private func parse(_ text: String) throws(ConfigSyntaxError) -> [ConfigEntry] {
        try ConfigTOML.parse(Array(text.utf8))
    }

    private func failure(_ text: String) -> ConfigSyntaxError? {
        do {
            _ = try self.parse(text)
            return nil
        } catch {
            return error
        }
    }

    @Test func readsTheValuesASettingsFileNeeds() throws {
        let entries = try self.parse(
            """
            # comment
            socket = "/run/sobot-broker/broker.sock"   # trailing comment
            drain-timeout = 2.5
            max_connections = 1_000
            metrics-listen-any = true
            http-proxy = [
              "/run/a.sock",  # first
              '127.0.0.1:8080',
            ]
            escaped = "tab\\there \\"quoted\\" \\u00e9"
            negative = -3
            exponent = 1e3

            [regions]
            sg = "http://127.0.0.1:8081"
            "quoted-key" = "x"
            """
        )
        #expect(entries.count == 10)
        #expect(entries[0] == ConfigEntry(table: nil, key: "socket", value: .string("/run/sobot-broker/broker.sock"), line: 2, column: 1))
        #expect(entries[1].value == .float(2.5))
        #expect(entries[2].value == .integer(1000) && entries[2].key == "max_connections")
        #expect(entries[3].value == .boolean(true))
        #expect(entries[4].value == .array([.string("/run/a.sock"), .string("127.0.0.1:8080")]))
        #expect(entries[5].value == .string("tab\there \"quoted\" é"))
        #expect(entries[6].value == .integer(-3))
        #expect(entries[7].value == .float(1000))
        #expect(entries[8].table == "regions" && entries[8].key == "sg" && entries[8].line == 15)
        #expect(entries[9].key == "quoted-key" && entries[9].value == .string("x"))
    }

    @Test func refusesWhatItDoesNotReadAtTheRightLineAndColumn() {
        let cases: [(String, Int, Int, String)] = [
            ("a = 1\nb = 2 3\n", 2, 7, "expected the end of the line"),
            ("a = \"open\n", 1, 10, "string is not closed on its line"),
            ("a.b = 1\n", 1, 2, "dotted keys are not supported; use a [table]"),
            ("a = { b = 1 }\n", 1, 5, "inline tables are not supported; use a [table]"),
            ("a = 1979-05-27\n", 1, 5, "expected a value (strings are quoted; dates, hex and other forms are not supported)"),
            ("a = 0x10\n", 1, 5, "expected a value (strings are quoted; dates, hex and other forms are not supported)"),
            ("[[servers]]\n", 1, 2, "arrays of tables ([[…]]) are not supported"),
            ("a = \"\"\"x\"\"\"\n", 1, 5, "multi-line strings are not supported"),
            ("a = 1\na = 2\n", 2, 1, "key a is given twice"),
            ("[t]\n[t]\n", 2, 2, "table [t] is defined twice"),
            ("a = [1, 2\n", 2, 1, "expected , or ] in the array"),
            ("a = 1__0\n", 1, 5, "expected a value (strings are quoted)"),
            ("a = 012\n", 1, 5, "not a decimal number"),
            ("a = 99999999999999999999\n", 1, 5, "not a number the broker can hold"),
            ("é = 1\n", 1, 1, "expected a key"),
            ("a = \"é\" b\n", 1, 9, "expected the end of the line"),
            ("a = \"\\q\"\n", 1, 6, "unknown escape in a string"),
            ("a = yes\n", 1, 5, "expected a value (strings are quoted; dates, hex and other forms are not supported)"),
            ("= 1\n", 1, 1, "expected a key"),
        ]
        for (text, line, column, message) in cases {
            let error = self.failure(text)
            #expect(error == ConfigSyntaxError(line: line, column: column, message: message), "\(text.debugDescription): \(String(describing: error))")
        }
        #expect(self.failure("a = \"\u{01}\"\n")?.message == "control character in a string")
        #expect((try? ConfigTOML.parse([0x61, 0x20, 0x3D, 0x20, 0x22, 0xFF, 0x22])) == nil, "not UTF-8 is refused")
    }

    @Test func anEmptyFileOrOnlyCommentsHoldsNothing() throws {
        #expect(try self.parse("").isEmpty)
        #expect(try self.parse("# only\r\n\r\n   # comments\n").isEmpty)
    }

    @Test func theSchemaNamesUnknownKeysTypesAndRegions() {
        func error(_ text: String) -> String? {
            do {
                _ = try BrokerConfigFile.parse(Array(text.utf8), path: "c.toml")
                return nil
            } catch {
                return error.description
            }
        }
        #expect(error("treads = 1\n") == "config file c.toml:1:1: unknown key \"treads\"; did you mean threads?")
        #expect(error("colour = 1\n") == "config file c.toml:1:1: unknown key \"colour\"")
        #expect(error("metrics-listen-any = 1\n") == "config file c.toml:1:1: metrics-listen-any must be true or false, not an integer")
        #expect(error("http-proxy = [1]\n") == "config file c.toml:1:1: http-proxy must be a string or an array of strings, not an array")
        #expect(error("[regions]\nEU = \"http://a\"\n") == "config file c.toml:2:1: region \"EU\": names are 1-32 of [a-z0-9-]")
        #expect(error("[regions]\neu = \"ftp://a\"\n") == "config file c.toml:2:1: regions.eu is not a base URL: expected \"http(s)://host[:port][/path]\"")
        #expect(error("drain-timeout = 1\nmodules = \"marketing\"\n[regions]\neu = \"http://eu.example.com/\"\n") == nil)
    }
}
