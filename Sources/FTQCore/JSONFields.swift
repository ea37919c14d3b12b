/// Typed reads of the members of a JSON document with a fixed schema (manifests, pack
/// indexes): every failure is one invalid-input error with the schema's code.
public struct JSONFields: Sendable {
    public let code: String
    /// Put before every message (e.g. `index: `).
    public let prefix: String

    public init(code: String, prefix: String = "") {
        self.code = code
        self.prefix = prefix
    }

    public func fail(_ what: String) -> FTQError { FTQError.invalid(code, prefix + what) }

    /// A non-negative integer written without sign, fraction or exponent, within `Int`.
    public func int(_ v: JSONValue?, _ what: String) throws -> Int {
        guard let n = v?.nonNegativeInteger, n <= UInt64(Int.max) else { throw fail("\(what) must be a non-negative integer") }
        return Int(n)
    }

    public func string(_ v: JSONValue?, _ what: String) throws -> String {
        guard case let .string(s)? = v else { throw fail("\(what) must be a string") }
        return s
    }

    /// A SHA-256 digest: 64 lowercase hex digits.
    public func digest(_ v: JSONValue?, _ what: String) throws -> String {
        let s = try string(v, what)
        guard s.utf8.count == 64, s.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else {
            throw fail("\(what) must be 64 lowercase hex digits")
        }
        return s
    }

    /// An object with no member outside `known` (and, with `requireAll`, every one of them).
    public func members(_ v: JSONValue, _ known: [String], _ what: String, requireAll: Bool) throws {
        guard case let .object(m) = v else { throw fail("\(what) must be an object") }
        if let u = m.first(where: { !known.contains($0.0) }) { throw fail("\(what) has an unknown member \"\(u.0)\"") }
        if requireAll { for k in known where v[k] == nil { throw fail("\(what) lacks \"\(k)\"") } }
    }
}
