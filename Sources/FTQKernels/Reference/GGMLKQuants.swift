import FTQCore

/// Dequantizers of the K-quant families, by ggml type name.
let kQuantKernels: [String: GGMLDequantizer.Kernel] = Dictionary(uniqueKeysWithValues: GGMLKQuant.allCases.map { t in
    let kernel: GGMLDequantizer.Kernel = { q, y in t.dequantize(q, into: y) }
    return (t.rawValue, kernel)
})

/// ggml's K-quants Q2_K, Q3_K, Q4_K, Q5_K and Q6_K, dequantization only: the scalar reference,
/// which is the specification (formats/ggml-quants.md, "K-quant blocks (dequantization)").
/// Every block holds 256 elements in sub-blocks of 16 or 32; the block scales are float16; all
/// arithmetic is float32, one operation at a time in the order ggml writes it.
public enum GGMLKQuant: String, CaseIterable, Sendable {
    case Q2_K, Q3_K, Q4_K, Q5_K, Q6_K

    public static let blockElements = 256

    /// Bytes per block of 256 elements.
    public var blockBytes: Int {
        switch self {
        case .Q2_K: return 84
        case .Q3_K: return 110
        case .Q4_K: return 144
        case .Q5_K: return 176
        case .Q6_K: return 210
        }
    }

    /// The ggml type.
    public var ggmlType: GGMLType { GGMLType.named(rawValue)! }

    /// Dequantizes whole blocks of `q` into `y` (256 floats per block).
    public func dequantize(_ q: UnsafeRawBufferPointer, into y: UnsafeMutableBufferPointer<Float>) {
        let n = blockBytes
        let blocks = q.count / n
        precondition(q.count % n == 0 && y.count >= blocks * 256)
        for b in 0..<blocks {
            let i = UnsafeRawBufferPointer(rebasing: q[(b * n)..<(b * n + n)])
            let o = UnsafeMutableBufferPointer(rebasing: y[(b * 256)..<(b * 256 + 256)])
            switch self {
            case .Q2_K: Self.dequantizeQ2_K(i, o)
            case .Q3_K: Self.dequantizeQ3_K(i, o)
            case .Q4_K: Self.dequantizeQ45_K(i, o, fiveBit: false)
            case .Q5_K: Self.dequantizeQ45_K(i, o, fiveBit: true)
            case .Q6_K: Self.dequantizeQ6_K(i, o)
            }
        }
    }

    // MARK: one block each

    /// The float16 at byte `at`, widened exactly.
    @inline(__always)
    static func half(_ b: UnsafeRawBufferPointer, _ at: Int) -> Float {
        Float(bitPattern: FloatBits.f16ToF32(UInt16(b[at]) | UInt16(b[at + 1]) << 8))
    }

    /// Q2_K: `scales[16]` (low nibble: scale, high nibble: min, one byte per 16 elements),
    /// `qs[64]` (2-bit codes), `d`, `dmin` (f16). Element `e = 128h + 32j + l` (h < 2, j < 4,
    /// l < 32) is bits `2j, 2j+1` of `qs[32h + l]`; `y = (d * sc) * q - (dmin * m)` with the
    /// scale byte `scales[e / 16]`.
    static func dequantizeQ2_K(_ i: UnsafeRawBufferPointer, _ o: UnsafeMutableBufferPointer<Float>) {
        let d = half(i, 80), dmin = half(i, 82)
        for h in 0..<2 {
            for j in 0..<4 {
                let shift = UInt8(2 * j)
                for part in 0..<2 {
                    let sc = i[8 * h + 2 * j + part]
                    let dl = d * Float(sc & 0x0f)
                    let ml = dmin * Float(sc >> 4)
                    for l in (16 * part)..<(16 * part + 16) {
                        let q = (i[16 + 32 * h + l] >> shift) & 3
                        o[128 * h + 32 * j + l] = dl * Float(q) - ml
                    }
                }
            }
        }
    }

    /// The sixteen 6-bit Q3_K scales, each minus 32: sub-block `s` takes its low four bits from
    /// `scales[s]` (s < 8) or the high nibble of `scales[s - 8]`, and its top two bits from bits
    /// `2 * (s / 4)` of `scales[8 + s % 4]` (`scales` starts at byte 96).
    @inline(__always)
    static func q3Scale(_ i: UnsafeRawBufferPointer, _ s: Int) -> Int {
        let low = s < 8 ? i[96 + s] & 0x0f : i[96 + s - 8] >> 4
        let high = (i[96 + 8 + s % 4] >> UInt8(2 * (s / 4))) & 3
        return Int(low | high << 4) - 32
    }

    /// Q3_K: `hmask[32]`, `qs[64]` (2-bit low parts), `scales[12]` (sixteen 6-bit scales), `d`
    /// (f16). Element `e = 128h + 32j + l`: low bits `2j, 2j+1` of `qs[32h + l]`, minus 4 when
    /// bit `4h + j` of `hmask[l]` is clear; `y = (d * (scale - 32)) * q`, scale of `e / 16`.
    static func dequantizeQ3_K(_ i: UnsafeRawBufferPointer, _ o: UnsafeMutableBufferPointer<Float>) {
        let d = half(i, 108)
        for h in 0..<2 {
            for j in 0..<4 {
                let shift = UInt8(2 * j)
                let bit = UInt8(1) << UInt8(4 * h + j)
                for part in 0..<2 {
                    let dl = d * Float(q3Scale(i, 8 * h + 2 * j + part))
                    for l in (16 * part)..<(16 * part + 16) {
                        let q = Int((i[32 + 32 * h + l] >> shift) & 3) - (i[l] & bit != 0 ? 0 : 4)
                        o[128 * h + 32 * j + l] = dl * Float(q)
                    }
                }
            }
        }
    }

    /// The 6-bit scale and min of sub-block `j` (0..<8) of a Q4_K or Q5_K block, whose 12 packed
    /// bytes start at byte 4: j < 4 takes the low six bits of bytes `j` and `j + 4`; j >= 4
    /// takes the nibbles of byte `j + 4` with the top two bits of bytes `j - 4` and `j` above.
    @inline(__always)
    static func scaleMin(_ i: UnsafeRawBufferPointer, _ j: Int) -> (UInt8, UInt8) {
        if j < 4 { return (i[4 + j] & 63, i[4 + j + 4] & 63) }
        return ((i[4 + j + 4] & 0x0f) | (i[4 + j - 4] >> 6) << 4, (i[4 + j + 4] >> 4) | (i[4 + j] >> 6) << 4)
    }

    /// Q4_K: `d`, `dmin` (f16), `scales[12]`, `qs[128]`. Q5_K: the same with `qh[32]` before
    /// `qs`. Element `e = 64c + 32p + l` (c < 4, p < 2, l < 32) is the low (p = 0) or high
    /// (p = 1) nibble of `qs[32c + l]`, plus 16 in Q5_K when bit `2c + p` of `qh[l]` is set;
    /// `y = (d * sc) * q - (dmin * m)` with sub-block `2c + p`'s scale and min.
    static func dequantizeQ45_K(_ i: UnsafeRawBufferPointer, _ o: UnsafeMutableBufferPointer<Float>, fiveBit: Bool) {
        let d = half(i, 0), dmin = half(i, 2)
        let qs = fiveBit ? 48 : 16
        for c in 0..<4 {
            for p in 0..<2 {
                let (sc, m) = scaleMin(i, 2 * c + p)
                let d1 = d * Float(sc)
                let m1 = dmin * Float(m)
                let shift = UInt8(4 * p)
                let bit = UInt8(1) << UInt8(2 * c + p)
                for l in 0..<32 {
                    var q = (i[qs + 32 * c + l] >> shift) & 0x0f
                    if fiveBit && i[16 + l] & bit != 0 { q += 16 }
                    o[64 * c + 32 * p + l] = d1 * Float(q) - m1
                }
            }
        }
    }

    /// Q6_K: `ql[128]` (low four bits), `qh[64]` (top two bits), `scales[16]` (int8), `d` (f16).
    /// Element `e = 128h + 32k + l` (h < 2, k < 4, l < 32): low bits from `ql[64h + l]` (k = 0:
    /// low nibble, k = 2: high nibble) or `ql[64h + 32 + l]` (k = 1, 3), top bits `2k, 2k+1` of
    /// `qh[32h + l]`; `y = (d * scales[e / 16]) * (q - 32)`.
    static func dequantizeQ6_K(_ i: UnsafeRawBufferPointer, _ o: UnsafeMutableBufferPointer<Float>) {
        let d = half(i, 208)
        for h in 0..<2 {
            for k in 0..<4 {
                let lowByte = 64 * h + (k & 1) * 32
                let lowShift = UInt8((k >> 1) * 4)
                let highShift = UInt8(2 * k)
                for l in 0..<32 {
                    let e = 128 * h + 32 * k + l
                    let code = (i[lowByte + l] >> lowShift) & 0x0f | ((i[128 + 32 * h + l] >> highShift) & 3) << 4
                    let sc = Float(Int8(bitPattern: i[192 + e / 16]))
                    o[e] = d * sc * Float(Int(code) - 32)
                }
            }
        }
    }
}
