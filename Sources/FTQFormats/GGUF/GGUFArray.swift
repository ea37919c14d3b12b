import FTQCore

/// A GGUF metadata array, kept as the bytes of its elements exactly as the file encodes them.
///
/// Storing the encoding rather than one Swift value per element keeps a parsed header no
/// larger than the file it came from (a `u8` array of n elements costs n bytes, not n boxed
/// values), and makes rewriting an array byte-exact. Elements are decoded on demand.
public struct GGUFArray: Sendable, Equatable {
    public let elementType: GGUFValueType
    public let count: Int
    /// The encoded elements (no element-type or count prefix).
    public let raw: [UInt8]

    /// An array validated by the reader.
    init(elementType: GGUFValueType, count: Int, raw: [UInt8]) {
        self.elementType = elementType
        self.count = count
        self.raw = raw
    }

    /// Encodes `values`, all of type `elementType`.
    public init(_ elementType: GGUFValueType, _ values: [GGUFValue]) {
        precondition(values.allSatisfy { $0.type == elementType }, "GGUF array elements must share one type")
        var w = ByteWriter()
        for v in values { w.value(v) }
        self.init(elementType: elementType, count: values.count, raw: w.out)
    }

    /// The elements, decoded.
    public var values: [GGUFValue] { prefix(count) }

    /// Calls `body` with each element in turn, decoding one at a time.
    public func forEach(_ body: (GGUFValue) -> Void) {
        var pos = 0
        for _ in 0..<count { body(GGUFArray.decode(elementType, raw, &pos)) }
    }

    /// The first `n` elements, decoded (the rest are not touched).
    public func prefix(_ n: Int) -> [GGUFValue] {
        var out: [GGUFValue] = []
        var pos = 0
        for _ in 0..<min(n, count) {
            out.append(GGUFArray.decode(elementType, raw, &pos))
        }
        return out
    }

    /// Decodes one element at `pos` of bytes the reader has already validated.
    static func decode(_ type: GGUFValueType, _ b: [UInt8], _ pos: inout Int) -> GGUFValue {
        func int<T: FixedWidthInteger>(_: T.Type) -> T {
            var v: T = 0
            for k in 0..<MemoryLayout<T>.size { v |= T(truncatingIfNeeded: b[pos + k]) << (8 * k) }
            pos += MemoryLayout<T>.size
            return v
        }
        switch type {
        case .u8: return .u8(int(UInt8.self))
        case .i8: return .i8(int(Int8.self))
        case .u16: return .u16(int(UInt16.self))
        case .i16: return .i16(int(Int16.self))
        case .u32: return .u32(int(UInt32.self))
        case .i32: return .i32(int(Int32.self))
        case .u64: return .u64(int(UInt64.self))
        case .i64: return .i64(int(Int64.self))
        case .f32: return .f32(Float(bitPattern: int(UInt32.self)))
        case .f64: return .f64(Double(bitPattern: int(UInt64.self)))
        case .bool: return .bool(int(UInt8.self) != 0)
        case .string:
            let n = Int(int(UInt64.self))
            let s = String(decoding: b[pos..<pos + n], as: UTF8.self)
            pos += n
            return .string(s)
        case .array:
            let et = GGUFValueType(rawValue: int(UInt32.self))!
            let n = Int(int(UInt64.self))
            let start = pos
            skip(et, count: n, b, &pos)
            return .array(GGUFArray(elementType: et, count: n, raw: Array(b[start..<pos])))
        }
    }

    /// Advances `pos` past `count` encoded elements of `type` without decoding them.
    static func skip(_ type: GGUFValueType, count: Int, _ b: [UInt8], _ pos: inout Int) {
        if let size = type.fixedSize { pos += count * size; return }
        func u64() -> Int {
            var v: UInt64 = 0
            for k in 0..<8 { v |= UInt64(b[pos + k]) << (8 * UInt64(k)) }
            pos += 8
            return Int(v)
        }
        for _ in 0..<count {
            if type == .string {
                let n = u64()
                pos += n
            } else {
                var t: UInt32 = 0
                for k in 0..<4 { t |= UInt32(b[pos + k]) << (8 * UInt32(k)) }
                pos += 4
                let n = u64()
                skip(GGUFValueType(rawValue: t)!, count: n, b, &pos)
            }
        }
    }
}
