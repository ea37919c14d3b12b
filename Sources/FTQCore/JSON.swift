/// A JSON value with object members in file order.
///
/// Produced by ``StrictJSON``, which, unlike Foundation's `JSONDecoder`, rejects duplicate
/// keys (the same file must never mean two things) and keeps numbers as their literal text,
/// so that `1.0`, `1e3` and `-0` can be refused where an integer is required.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    /// The number's literal text, exactly as written.
    case number(String)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.number(x), .number(y)): return x == y
        case let (.string(x), .string(y)): return ExactName(x) == ExactName(y)
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { ExactName($0.0) == ExactName($1.0) && $0.1 == $1.1 }
        default: return false
        }
    }

    /// The member named `key` of an object (objects from ``StrictJSON`` have unique keys).
    public subscript(key: String) -> JSONValue? {
        if case let .object(members) = self {
            let k = ExactName(key)
            return members.first { ExactName($0.0) == k }?.1
        }
        return nil
    }

    /// A short name of the value's kind, for error messages.
    public var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .number: return "a number"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// The value as a non-negative integer written without sign, fraction or exponent.
    public var nonNegativeInteger: UInt64? {
        guard case let .number(text) = self, !text.isEmpty,
              text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return UInt64(text)
    }
}

/// A strict RFC 8259 JSON parser (formats/safetensors.md, "Header JSON").
///
/// Rejects: duplicate object keys at any depth, invalid UTF-8, unescaped control characters,
/// unpaired surrogate escapes, leading zeros, trailing commas, nesting deeper than
/// ``maxDepth``, and anything but whitespace after the value.
public struct StrictJSON {
    public static let maxDepth = Limits.jsonDepth

    private let bytes: UnsafeBufferPointer<UInt8>
    private var i = 0
    private var depth = 0

    private init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    /// Parses one JSON document. Errors have codes `json.*` and give the byte offset.
    public static func parse(_ data: [UInt8]) throws -> JSONValue {
        try data.withUnsafeBufferPointer { buf in
            var p = StrictJSON(buf)
            p.skipWhitespace()
            let v = try p.value()
            p.skipWhitespace()
            if p.i != buf.count { throw p.fail("json.trailing", "unexpected data after the JSON value") }
            return v
        }
    }

    private func fail(_ code: String, _ msg: String) -> FTQError {
        FTQError.invalid(code, "invalid JSON at byte \(i): \(msg)")
    }

    private mutating func skipWhitespace() {
        while i < bytes.count {
            switch bytes[i] {
            case 0x20, 0x09, 0x0a, 0x0d: i += 1
            default: return
            }
        }
    }

    private mutating func value() throws -> JSONValue {
        guard i < bytes.count else { throw fail("json.eof", "unexpected end") }
        switch bytes[i] {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw fail("json.syntax", "unexpected character")
        }
    }

    private mutating func literal(_ word: StaticString) throws {
        let n = word.utf8CodeUnitCount
        guard i + n <= bytes.count else { throw fail("json.eof", "unexpected end") }
        for k in 0..<n where bytes[i + k] != word.utf8Start[k] {
            throw fail("json.syntax", "unexpected character")
        }
        i += n
    }

    private mutating func enter() throws {
        depth += 1
        if depth > StrictJSON.maxDepth { throw fail("json.too-deep", "nesting deeper than \(StrictJSON.maxDepth)") }
    }

    private mutating func object() throws -> JSONValue {
        try enter()
        defer { depth -= 1 }
        i += 1
        var members: [(String, JSONValue)] = []
        var seen = Set<ExactName>()
        skipWhitespace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
        while true {
            skipWhitespace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("json.syntax", "expected a string key") }
            let keyStart = i
            let key = try string()
            if !seen.insert(ExactName(key)).inserted {
                i = keyStart
                throw FTQError.invalid("json.duplicate-key", "duplicate key \"\(key)\" at byte \(keyStart) (a file must never mean two things)")
            }
            skipWhitespace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("json.syntax", "expected ':'") }
            i += 1
            skipWhitespace()
            members.append((key, try value()))
            skipWhitespace()
            guard i < bytes.count else { throw fail("json.eof", "unexpected end inside an object") }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
            throw fail("json.syntax", "expected ',' or '}'")
        }
    }

    private mutating func array() throws -> JSONValue {
        try enter()
        defer { depth -= 1 }
        i += 1
        var items: [JSONValue] = []
        skipWhitespace()
        if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
        while true {
            skipWhitespace()
            items.append(try value())
            skipWhitespace()
            guard i < bytes.count else { throw fail("json.eof", "unexpected end inside an array") }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
            throw fail("json.syntax", "expected ',' or ']'")
        }
    }

    private mutating func number() throws -> String {
        let start = i
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        guard i < bytes.count, isDigit(bytes[i]) else { throw fail("json.syntax", "invalid number") }
        if bytes[i] == UInt8(ascii: "0") {
            i += 1
            if i < bytes.count, isDigit(bytes[i]) { throw fail("json.syntax", "leading zero in a number") }
        } else {
            while i < bytes.count, isDigit(bytes[i]) { i += 1 }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: ".") {
            i += 1
            guard i < bytes.count, isDigit(bytes[i]) else { throw fail("json.syntax", "invalid fraction") }
            while i < bytes.count, isDigit(bytes[i]) { i += 1 }
        }
        if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            i += 1
            if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
            guard i < bytes.count, isDigit(bytes[i]) else { throw fail("json.syntax", "invalid exponent") }
            while i < bytes.count, isDigit(bytes[i]) { i += 1 }
        }
        return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
    }

    private func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }

    private mutating func hex4() throws -> UInt32 {
        guard i + 4 <= bytes.count else { throw fail("json.eof", "unexpected end in \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[i]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: throw fail("json.syntax", "invalid \\u escape")
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    private mutating func string() throws -> String {
        i += 1  // opening quote
        var out: [UInt8] = []
        var runStart = i
        while true {
            guard i < bytes.count else { throw fail("json.eof", "unterminated string") }
            let c = bytes[i]
            if c == UInt8(ascii: "\"") {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<i]))
                i += 1
                break
            }
            if c < 0x20 { throw fail("json.control-character", "unescaped control character in a string") }
            if c == UInt8(ascii: "\\") {
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<i]))
                i += 1
                guard i < bytes.count else { throw fail("json.eof", "unterminated escape") }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5c)
                case UInt8(ascii: "/"): out.append(0x2f)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0c)
                case UInt8(ascii: "n"): out.append(0x0a)
                case UInt8(ascii: "r"): out.append(0x0d)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if scalar >= 0xD800 && scalar < 0xDC00 {
                        guard i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                            throw fail("json.surrogate", "unpaired surrogate escape")
                        }
                        i += 2
                        let low = try hex4()
                        guard low >= 0xDC00 && low < 0xE000 else { throw fail("json.surrogate", "unpaired surrogate escape") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if scalar >= 0xDC00 && scalar < 0xE000 {
                        throw fail("json.surrogate", "unpaired surrogate escape")
                    }
                    out.append(contentsOf: Array(String(Unicode.Scalar(scalar)!).utf8))
                default: throw fail("json.syntax", "invalid escape")
                }
                runStart = i
                continue
            }
            i += 1
        }
        guard let s = String(validating: out, as: UTF8.self) else {
            throw fail("json.utf8", "string is not valid UTF-8")
        }
        return s
    }
}

/// JSON text output.
public enum JSONText {
    /// A JSON string literal as Rust's serde_json writes it: `"` `\` and control characters
    /// escaped (`\b \f \n \r \t`, others `\u00XX`), everything else verbatim UTF-8.
    public static func quote(_ s: String) -> String {
        var out = "\""
        out.reserveCapacity(s.utf8.count + 2)
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if u.value < 0x20 {
                    out += "\\u00" + hex2(UInt8(u.value))
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }

    /// A JSON string literal as Python's `json.dumps` writes it by default (`ensure_ascii`):
    /// non-ASCII characters as `\uXXXX` escapes (surrogate pairs above U+FFFF).
    public static func quoteASCII(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if u.value < 0x20 || u.value > 0x7e {
                    if u.value > 0xFFFF {
                        let v = u.value - 0x10000
                        out += "\\u" + hex4(UInt16(0xD800 + (v >> 10))) + "\\u" + hex4(UInt16(0xDC00 + (v & 0x3ff)))
                    } else {
                        out += "\\u" + hex4(UInt16(u.value))
                    }
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }

    static func hex2(_ v: UInt8) -> String {
        let d = Array("0123456789abcdef".utf8)
        return String(decoding: [d[Int(v >> 4)], d[Int(v & 15)]], as: UTF8.self)
    }
    static func hex4(_ v: UInt16) -> String { hex2(UInt8(v >> 8)) + hex2(UInt8(v & 0xff)) }

    /// Serializes a value compactly (serde_json style) or, with `indent`, pretty-printed
    /// like Python's `json.dumps(indent=N)`.
    public static func serialize(_ v: JSONValue, indent: Int? = nil, level: Int = 0, asciiOnly: Bool = false) -> String {
        var out = ""
        write(v, into: &out, indent: indent, level: level, ascii: asciiOnly)
        return out
    }

    private static func write(_ v: JSONValue, into out: inout String, indent: Int?, level: Int, ascii: Bool) {
        let q: (String) -> String = ascii ? { JSONText.quoteASCII($0) } : { JSONText.quote($0) }
        switch v {
        case .null: out += "null"
        case let .bool(b): out += b ? "true" : "false"
        case let .number(n): out += n
        case let .string(s): out += q(s)
        case let .array(items):
            if items.isEmpty { out += "[]"; return }
            out += "["
            for (k, item) in items.enumerated() {
                if k > 0 { out += "," }
                if let indent { out += "\n" + String(repeating: " ", count: indent * (level + 1)) }
                write(item, into: &out, indent: indent, level: level + 1, ascii: ascii)
            }
            if let indent { out += "\n" + String(repeating: " ", count: indent * level) }
            out += "]"
        case let .object(members):
            if members.isEmpty { out += "{}"; return }
            out += "{"
            for (k, (key, item)) in members.enumerated() {
                if k > 0 { out += "," }
                if let indent { out += "\n" + String(repeating: " ", count: indent * (level + 1)) }
                out += q(key)
                out += indent == nil ? ":" : ": "
                write(item, into: &out, indent: indent, level: level + 1, ascii: ascii)
            }
            if let indent { out += "\n" + String(repeating: " ", count: indent * level) }
            out += "}"
        }
    }
}

extension JSONValue {
    /// An integer JSON number.
    public static func int<T: BinaryInteger>(_ v: T) -> JSONValue { .number(String(v)) }

    /// A floating-point JSON number (shortest round-trip text), or null for NaN/infinity.
    public static func double(_ v: Double) -> JSONValue {
        guard v.isFinite else { return .null }
        return .number("\(v)")
    }
}
