import FTQCore

/// Vectorised dequantizers for the block types whose scalar reference is slowest (Q5_0, Q5_1,
/// Q6_K): the same float32 operations per value as the reference (formats/ggml-quants.md), on
/// 16 values at a time, so the results are bit-identical.
enum DequantFast {
    @inline(__always)
    static func half(_ p: UnsafeRawPointer, _ at: Int) -> Float {
        Float(bitPattern: FloatBits.f16ToF32(p.loadUnaligned(fromByteOffset: at, as: UInt16.self).littleEndian))
    }

    /// 16.0 in the lanes whose bit of `qh` (under `bits`) is set, else 0: the fifth bit of a
    /// Q5 code as a float (adding it to the low four bits' float is exact).
    @inline(__always)
    static func fifthBit(_ qh: UInt32, _ bits: SIMD16<UInt32>) -> SIMD16<Float> {
        let set = (SIMD16<UInt32>(repeating: qh) & bits) &>> 0 .== bits
        return SIMD16<Float>(repeating: 0).replacing(with: 16, where: set)
    }

    @inline(__always)
    static func floats(_ v: SIMD16<UInt8>) -> SIMD16<Float> {
        SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: v))
    }

    /// Q5_0 / Q5_1 (`offset`: 32-element blocks of 22 or 24 bytes; y = (q - 16) * d, or
    /// q * d + m).
    /// Every float16 bit pattern widened to float32 (FloatBits.f16ToF32), for the block scales.
    static let f16Table: [Float] = (0...0xffff).map { Float(bitPattern: FloatBits.f16ToF32(UInt16($0))) }

    static func q5(_ q: UnsafeRawBufferPointer, into y: UnsafeMutableBufferPointer<Float>, withMin: Bool) {
        f16Table.withUnsafeBufferPointer { q5(q, into: y, withMin: withMin, f16: $0.baseAddress!) }
    }

    static func q5(_ q: UnsafeRawBufferPointer, into y: UnsafeMutableBufferPointer<Float>, withMin: Bool, f16: UnsafePointer<Float>) {
        let bytes = withMin ? 24 : 22
        let blocks = q.count / bytes
        let src = q.baseAddress!
        let out = UnsafeMutableRawPointer(y.baseAddress!)
        let sixteen = SIMD16<Float>(repeating: 16)
        let bitsLow = SIMD16<UInt32>(1 << 0, 1 << 1, 1 << 2, 1 << 3, 1 << 4, 1 << 5, 1 << 6, 1 << 7,
                                     1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12, 1 << 13, 1 << 14, 1 << 15)
        let bitsHigh = bitsLow &<< 16
        for b in 0..<blocks {
            let p = src + b * bytes
            let d = SIMD16<Float>(repeating: f16[Int(p.loadUnaligned(fromByteOffset: 0, as: UInt16.self).littleEndian)])
            let hOff = withMin ? 4 : 2
            let qh = p.loadUnaligned(fromByteOffset: hOff, as: UInt32.self).littleEndian
            let qs = p.loadUnaligned(fromByteOffset: hOff + 4, as: SIMD16<UInt8>.self)
            let lo = floats(qs & 0x0f) + fifthBit(qh, bitsLow)
            let hi = floats(qs &>> 4) + fifthBit(qh, bitsHigh)
            let o = b * 32 * 4
            if withMin {
                let m = SIMD16<Float>(repeating: f16[Int(p.loadUnaligned(fromByteOffset: 2, as: UInt16.self).littleEndian)])
                out.storeBytes(of: lo * d + m, toByteOffset: o, as: SIMD16<Float>.self)
                out.storeBytes(of: hi * d + m, toByteOffset: o + 64, as: SIMD16<Float>.self)
            } else {
                out.storeBytes(of: (lo - sixteen) * d, toByteOffset: o, as: SIMD16<Float>.self)
                out.storeBytes(of: (hi - sixteen) * d, toByteOffset: o + 64, as: SIMD16<Float>.self)
            }
        }
    }

    /// Q6_K (210-byte blocks of 256): y = (d * scale) * (q - 32).
    static func q6K(_ q: UnsafeRawBufferPointer, into y: UnsafeMutableBufferPointer<Float>) {
        let blocks = q.count / 210
        let src = q.baseAddress!
        let out = UnsafeMutableRawPointer(y.baseAddress!)
        let thirtyTwo = SIMD16<Float>(repeating: 32)
        for b in 0..<blocks {
            let p = src + b * 210
            let d = half(p, 208)
            for h in 0..<2 {
                for k in 0..<4 {
                    let lowByte = 64 * h + (k & 1) * 32
                    let lowShift = UInt8((k >> 1) * 4)
                    let highShift = UInt8(2 * k)
                    for half16 in 0..<2 {
                        let l = half16 * 16
                        let low = (p.loadUnaligned(fromByteOffset: lowByte + l, as: SIMD16<UInt8>.self) &>> lowShift) & 0x0f
                        let high = (p.loadUnaligned(fromByteOffset: 128 + 32 * h + l, as: SIMD16<UInt8>.self) &>> highShift) & 3
                        let e = 128 * h + 32 * k + l
                        let sc = Float(Int8(bitPattern: p.load(fromByteOffset: 192 + e / 16, as: UInt8.self)))
                        let v = SIMD16<Float>(repeating: d * sc) * (floats(low | (high &<< 4)) - thirtyTwo)
                        out.storeBytes(of: v, toByteOffset: (b * 256 + e) * 4, as: SIMD16<Float>.self)
                    }
                }
            }
        }
    }
}
