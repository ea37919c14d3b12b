/// Overflow-checked integer arithmetic for sizes, counts and offsets read from untrusted files.
///
/// Every product and sum derived from file contents goes through these; an overflow is
/// reported as an invalid input (`code`), never a trap. See formats/limits.md.
public enum Checked {
    @inlinable
    public static func add(_ a: Int, _ b: Int, _ code: String, _ what: @autoclosure () -> String) throws -> Int {
        let (r, o) = a.addingReportingOverflow(b)
        if o { throw FTQError.invalid(code, "\(what()) overflows a 64-bit size") }
        return r
    }

    @inlinable
    public static func mul(_ a: Int, _ b: Int, _ code: String, _ what: @autoclosure () -> String) throws -> Int {
        let (r, o) = a.multipliedReportingOverflow(by: b)
        if o { throw FTQError.invalid(code, "\(what()) overflows a 64-bit size") }
        return r
    }

    /// The product of `dims` (1 for an empty list), or an error if it overflows `Int`.
    @inlinable
    public static func product(_ dims: [Int], _ code: String, _ what: @autoclosure () -> String) throws -> Int {
        var p = 1
        for d in dims {
            let (r, o) = p.multipliedReportingOverflow(by: d)
            if o { throw FTQError.invalid(code, "\(what()) overflows a 64-bit element count") }
            p = r
        }
        return p
    }

    /// Converts an unsigned 64-bit value read from a file to `Int`, or fails.
    @inlinable
    public static func int(_ v: UInt64, _ code: String, _ what: @autoclosure () -> String) throws -> Int {
        guard v <= UInt64(Int.max) else { throw FTQError.invalid(code, "\(what()) (\(v)) is larger than 2^63-1") }
        return Int(v)
    }
}

/// Rounds `x` up to a multiple of `alignment` (a power of two), or nil on overflow.
@inlinable
public func alignUp(_ x: Int, _ alignment: Int) -> Int? {
    let (r, o) = x.addingReportingOverflow(alignment - 1)
    if o { return nil }
    return r & ~(alignment - 1)
}
