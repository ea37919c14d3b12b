import Testing
@testable import FTQCore

@Suite struct StrictJSONTests {
    func parse(_ s: String) throws -> JSONValue { try StrictJSON.parse(Array(s.utf8)) }

    func code(_ s: String) -> String? {
        do { _ = try parse(s); return nil } catch { return (error as? FTQError)?.code }
    }

    @Test func parsesObjectsInOrder() throws {
        let v = try parse(#"{"b": [1, 2.5, -3e2], "a": {"x": "y\u00e9\n"}, "c": null, "d": true}"#)
        guard case let .object(m) = v else { Issue.record("not an object"); return }
        #expect(m.map(\.0) == ["b", "a", "c", "d"])
        #expect(v["a"]?["x"] == .string("yé\n"))
        #expect(v["b"] == .array([.number("1"), .number("2.5"), .number("-3e2")]))
    }

    @Test(arguments: [
        (#"{"a":1,"a":2}"#, "json.duplicate-key"),
        (#"{"x":{"a":1,"a":1}}"#, "json.duplicate-key"),
        (#"{"a":1} x"#, "json.trailing"),
        (#"{"a":01}"#, "json.syntax"),
        (#"{"a":1,}"#, "json.syntax"),
        ("{\"a\":\"\u{01}\"}", "json.control-character"),
        (#"{"a":"\ud800"}"#, "json.surrogate"),
        (#"{"a":"#, "json.eof"),
        (String(repeating: "[", count: 100) + String(repeating: "]", count: 100), "json.too-deep"),
    ])
    func rejects(_ text: String, _ expected: String) {
        #expect(code(text) == expected)
    }

    @Test func rejectsInvalidUTF8() {
        #expect(throws: FTQError.self) { try StrictJSON.parse([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]) }
    }

    @Test func integersAreLiteral() throws {
        #expect(try parse("12").nonNegativeInteger == 12)
        #expect(try parse("1.0").nonNegativeInteger == nil)
        #expect(try parse("1e3").nonNegativeInteger == nil)
        #expect(try parse("-1").nonNegativeInteger == nil)
        #expect(try parse("18446744073709551616").nonNegativeInteger == nil)
    }

    @Test func quotesLikeSerdeAndPython() {
        #expect(JSONText.quote("a\"\\\u{01}é/") == "\"a\\\"\\\\\\u0001é/\"")
        #expect(JSONText.quoteASCII("é😀") == "\"\\u00e9\\ud83d\\ude00\"")
    }
}

@Suite struct ByteSizeTests {
    @Test(arguments: [("5GB", 5_000_000_000), ("500MiB", 500 << 20), ("1024", 1024), ("1.5KB", 1500), ("2 GiB", 2 << 30), ("10kb", 10_000)])
    func parses(_ text: String, _ value: Int) throws {
        #expect(try ByteSize.parse(text) == value)
    }

    @Test(arguments: ["", "GB", "5XB", "-1GB", "0"])
    func rejects(_ text: String) {
        #expect(throws: FTQError.self) { try ByteSize.parse(text) }
    }
}
