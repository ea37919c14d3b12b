import Testing
@testable import FTQCore

@Suite struct FloatBitsTests {
    @Test func f16WideningIsExactForEveryPattern() {
        for h in 0...UInt16.max {
            let f = Float(bitPattern: FloatBits.f16ToF32(h))
            let d = Double(bitPattern: FloatBits.f16ToF64(h))
            if f.isNaN {
                #expect(d.isNaN)
                // Narrowing a widened NaN keeps its payload.
                #expect(FloatBits.f32ToF16(f.bitPattern) == h)
            } else {
                #expect(Double(f) == d)
                #expect(FloatBits.f32ToF16(f.bitPattern) == h, "round trip of \(h)")
                #expect(FloatBits.f64ToF16(d.bitPattern) == h, "round trip of \(h) via f64")
            }
        }
    }

    @Test func bf16RoundTripsThroughF32() {
        for b in 0...UInt16.max {
            let f = FloatBits.bf16ToF32(b)
            if Float(bitPattern: f).isNaN {
                #expect(FloatBits.f32ToBF16(f) == (b & 0x8000) | 0x7fc0)
            } else {
                #expect(FloatBits.f32ToBF16(f) == b)
            }
        }
    }

    @Test(arguments: [
        // (f32 bits, expected f16 bits) from numpy 2.4 `astype(np.float16)`
        (UInt32(0x7f80_0001), UInt16(0x7c01)), (0xff80_0001, 0xfc01), (0x7fc0_0000, 0x7e00),
        (0x477f_f000, 0x7c00), (0x477f_efff, 0x7bff), (0x3300_0000, 0x0000), (0x3300_0001, 0x0001),
        (0x3f80_1000, 0x3c00), (0x3f80_3000, 0x3c02), (0x3f80_1001, 0x3c01),
    ])
    func f32ToF16MatchesNumpy(_ f: UInt32, _ h: UInt16) {
        #expect(FloatBits.f32ToF16(f) == h)
    }

    @Test func f64ToF16RoundsOnce() {
        // 1 + 2^-11 + 2^-40: numpy rounds up directly; through f32 it would round to 1.0.
        let d = 1.0 + 0x1p-11 + 0x1p-40
        #expect(FloatBits.f64ToF16(d.bitPattern) == 0x3c01)
        #expect(FloatBits.f32ToF16(Float(d).bitPattern) == 0x3c00)
    }

    @Test func bf16NaNAndTies() {
        #expect(FloatBits.f32ToBF16(0x7f80_0001) == 0x7fc0)
        #expect(FloatBits.f32ToBF16(0xff80_0001) == 0xffc0)
        #expect(FloatBits.f32ToBF16(0x3f80_8000) == 0x3f80)  // tie to even
        #expect(FloatBits.f32ToBF16(0x3f81_8000) == 0x3f82)
        #expect(FloatBits.f32ToBF16(0x7f7f_ffff) == 0x7f80)  // overflow to infinity
        #expect(FloatBits.bf16ToF16(0x7f81) == 0x7e00)
        #expect(FloatBits.bf16ToF16(0xffc1) == 0xfe00)
    }
}
