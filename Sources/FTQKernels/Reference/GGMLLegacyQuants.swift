import FTQCore

/// ggml's legacy block quantizers, Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1: the scalar reference,
/// which is the specification (formats/ggml-quants.md, "Legacy blocks"). Every block holds 32
/// elements; scales are float16, rounded to nearest even; all arithmetic is float32.
public enum GGMLLegacyQuant: String, CaseIterable, Sendable {
    case Q8_0, Q4_0, Q4_1, Q5_0, Q5_1

    public static let blockElements = 32

    /// Bytes per block of 32 elements.
    public var blockBytes: Int {
        switch self {
        case .Q8_0: return 34
        case .Q4_0: return 18
        case .Q4_1: return 20
        case .Q5_0: return 22
        case .Q5_1: return 24
        }
    }

    /// The ggml type.
    public var ggmlType: GGMLType { GGMLType.named(rawValue)! }

    /// The `general.file_type` (llama.cpp's LLAMA_FTYPE_MOSTLY_*) of a model of this type.
    public var fileType: UInt32 {
        switch self {
        case .Q4_0: return 2
        case .Q4_1: return 3
        case .Q8_0: return 7
        case .Q5_0: return 8
        case .Q5_1: return 9
        }
    }

    /// Quantizes `x` (a whole number of blocks) into `out` (blocks * blockBytes bytes).
    public func quantize(_ x: UnsafeBufferPointer<Float>, into out: UnsafeMutableRawBufferPointer) {
        precondition(x.count % 32 == 0 && out.count >= x.count / 32 * blockBytes)
        if self == .Q8_0, x.count > 0 { return Q8_0Fast.quantize(x, into: out) }
        if self == .Q4_0, x.count > 0 { return Q4_0Fast.quantize(x, into: out) }
        if self == .Q4_1, x.count > 0 { return Q4_1Fast.quantize(x, into: out) }
        referenceQuantize(x, into: out)
    }

    /// The scalar reference, block by block (the specification; fast kernels are tested against it).
    public func referenceQuantize(_ x: UnsafeBufferPointer<Float>, into out: UnsafeMutableRawBufferPointer) {
        precondition(x.count % 32 == 0 && out.count >= x.count / 32 * blockBytes)
        for b in 0..<(x.count / 32) {
            let block = UnsafeBufferPointer(rebasing: x[(b * 32)..<(b * 32 + 32)])
            let o = UnsafeMutableRawBufferPointer(rebasing: out[(b * blockBytes)..<(b * blockBytes + blockBytes)])
            switch self {
            case .Q8_0: Self.quantizeQ8_0(block, o)
            case .Q4_0: Self.quantizeQ4_0(block, o)
            case .Q4_1: Self.quantizeQ4_1(block, o)
            case .Q5_0: Self.quantizeQ5_0(block, o)
            case .Q5_1: Self.quantizeQ5_1(block, o)
            }
        }
    }

    /// Dequantizes whole blocks of `q` into `y` (32 floats per block).
    public func dequantize(_ q: UnsafeRawBufferPointer, into y: UnsafeMutableBufferPointer<Float>) {
        let blocks = q.count / blockBytes
        precondition(q.count % blockBytes == 0 && y.count >= blocks * 32)
        for b in 0..<blocks {
            let i = UnsafeRawBufferPointer(rebasing: q[(b * blockBytes)..<(b * blockBytes + blockBytes)])
            let o = UnsafeMutableBufferPointer(rebasing: y[(b * 32)..<(b * 32 + 32)])
            switch self {
            case .Q8_0:
                let d = Self.half(i, 0)
                for j in 0..<32 { o[j] = Float(Int8(bitPattern: i[2 + j])) * d }
            case .Q4_0:
                let d = Self.half(i, 0)
                for j in 0..<16 {
                    o[j] = Float(Int(i[2 + j] & 0x0f) - 8) * d
                    o[j + 16] = Float(Int(i[2 + j] >> 4) - 8) * d
                }
            case .Q4_1:
                let d = Self.half(i, 0), m = Self.half(i, 2)
                for j in 0..<16 {
                    o[j] = Float(i[4 + j] & 0x0f) * d + m
                    o[j + 16] = Float(i[4 + j] >> 4) * d + m
                }
            case .Q5_0:
                let d = Self.half(i, 0)
                let qh = Self.u32(i, 2)
                for j in 0..<16 {
                    let h0 = UInt8(truncatingIfNeeded: ((qh >> UInt32(j)) << 4) & 0x10)
                    let h1 = UInt8(truncatingIfNeeded: (qh >> UInt32(j + 12)) & 0x10)
                    o[j] = Float(Int((i[6 + j] & 0x0f) | h0) - 16) * d
                    o[j + 16] = Float(Int((i[6 + j] >> 4) | h1) - 16) * d
                }
            case .Q5_1:
                let d = Self.half(i, 0), m = Self.half(i, 2)
                let qh = Self.u32(i, 4)
                for j in 0..<16 {
                    let h0 = UInt8(truncatingIfNeeded: ((qh >> UInt32(j)) << 4) & 0x10)
                    let h1 = UInt8(truncatingIfNeeded: (qh >> UInt32(j + 12)) & 0x10)
                    o[j] = Float((i[8 + j] & 0x0f) | h0) * d + m
                    o[j + 16] = Float((i[8 + j] >> 4) | h1) * d + m
                }
            }
        }
    }

    // MARK: the reference quantizers, one block each

    static func half(_ b: UnsafeRawBufferPointer, _ at: Int) -> Float {
        Float(bitPattern: FloatBits.f16ToF32(UInt16(b[at]) | UInt16(b[at + 1]) << 8))
    }

    static func u32(_ b: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24
    }

    static func putHalf(_ v: Float, _ o: UnsafeMutableRawBufferPointer, _ at: Int) {
        let h = FloatBits.f32ToF16(v.bitPattern)
        o[at] = UInt8(h & 0xff)
        o[at + 1] = UInt8(h >> 8)
    }

    static func putU32(_ v: UInt32, _ o: UnsafeMutableRawBufferPointer, _ at: Int) {
        for k in 0..<4 { o[at + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(k))) }
    }

    /// 1/d in float32, or 0 when d is 0.
    static func inverse(_ d: Float) -> Float { d != 0 ? 1 / d : 0 }

    /// The signed value of largest magnitude; the first one wins a tie.
    static func signedMax(_ x: UnsafeBufferPointer<Float>) -> Float {
        var amax: Float = 0, max: Float = 0
        for v in x where amax < abs(v) { amax = abs(v); max = v }
        return max
    }

    static func minMax(_ x: UnsafeBufferPointer<Float>) -> (Float, Float) {
        var lo = Float.greatestFiniteMagnitude, hi = -Float.greatestFiniteMagnitude
        for v in x {
            if v < lo { lo = v }
            if v > hi { hi = v }
        }
        return (lo, hi)
    }

    /// C's float -> int conversion as x86-64 and ggml's peers perform it (`cvttss2si`):
    /// truncation toward zero; NaN and values out of the 32-bit range give INT32_MIN. Only the
    /// low byte is kept when the C code converts to int8_t or uint8_t.
    @inline(__always)
    static func cTrunc(_ v: Float) -> Int32 {
        guard v.isFinite, v > -2_147_483_904, v < 2_147_483_648 else { return Int32.min }
        return Int32(v.rounded(.towardZero))
    }

    /// `(int8_t)v`.
    @inline(__always)
    static func trunc8(_ v: Float) -> Int { Int(Int8(truncatingIfNeeded: cTrunc(v))) }

    static func quantizeQ8_0(_ x: UnsafeBufferPointer<Float>, _ o: UnsafeMutableRawBufferPointer) {
        var amax: Float = 0
        for v in x { amax = Swift.max(amax, abs(v)) }
        let d = amax / 127
        let id = inverse(d)
        putHalf(d, o, 0)
        for j in 0..<32 {
            o[2 + j] = UInt8(truncatingIfNeeded: cTrunc((x[j] * id).rounded(.toNearestOrAwayFromZero)))
        }
    }

    static func quantizeQ4_0(_ x: UnsafeBufferPointer<Float>, _ o: UnsafeMutableRawBufferPointer) {
        let d = signedMax(x) / -8
        let id = inverse(d)
        putHalf(d, o, 0)
        for j in 0..<16 {
            let a = UInt8(truncatingIfNeeded: Swift.min(15, trunc8(x[j] * id + 8.5)))
            let b = UInt8(truncatingIfNeeded: Swift.min(15, trunc8(x[j + 16] * id + 8.5)))
            o[2 + j] = a | b << 4  // as ggml: unmasked (a and b are 0...15 for finite input)
        }
    }

    static func quantizeQ4_1(_ x: UnsafeBufferPointer<Float>, _ o: UnsafeMutableRawBufferPointer) {
        let (lo, hi) = minMax(x)
        let d = (hi - lo) / 15
        let id = inverse(d)
        putHalf(d, o, 0)
        putHalf(lo, o, 2)
        for j in 0..<16 {
            let a = UInt8(truncatingIfNeeded: Swift.min(15, trunc8((x[j] - lo) * id + 0.5)))
            let b = UInt8(truncatingIfNeeded: Swift.min(15, trunc8((x[j + 16] - lo) * id + 0.5)))
            o[4 + j] = a | b << 4
        }
    }

    static func quantizeQ5_0(_ x: UnsafeBufferPointer<Float>, _ o: UnsafeMutableRawBufferPointer) {
        let d = signedMax(x) / -16
        let id = inverse(d)
        putHalf(d, o, 0)
        var qh: UInt32 = 0
        for j in 0..<16 {
            let a = UInt8(truncatingIfNeeded: Swift.min(31, trunc8(x[j] * id + 16.5)))
            let b = UInt8(truncatingIfNeeded: Swift.min(31, trunc8(x[j + 16] * id + 16.5)))
            o[6 + j] = (a & 0x0f) | (b & 0x0f) << 4
            qh |= UInt32((a & 0x10) >> 4) << UInt32(j)
            qh |= UInt32((b & 0x10) >> 4) << UInt32(j + 16)
        }
        putU32(qh, o, 2)
    }

    static func quantizeQ5_1(_ x: UnsafeBufferPointer<Float>, _ o: UnsafeMutableRawBufferPointer) {
        let (lo, hi) = minMax(x)
        let d = (hi - lo) / 31
        let id = inverse(d)
        putHalf(d, o, 0)
        putHalf(lo, o, 2)
        var qh: UInt32 = 0
        for j in 0..<16 {
            // ggml casts to uint8_t here, without a clamp to 31.
            let a = UInt8(truncatingIfNeeded: cTrunc((x[j] - lo) * id + 0.5))
            let b = UInt8(truncatingIfNeeded: cTrunc((x[j + 16] - lo) * id + 0.5))
            o[8 + j] = (a & 0x0f) | (b & 0x0f) << 4
            qh |= UInt32((a & 0x10) >> 4) << UInt32(j)
            qh |= UInt32((b & 0x10) >> 4) << UInt32(j + 16)
        }
        putU32(qh, o, 4)
    }
}
