import FTQCore
import FTQKernels

/// `ftq-bench bnb MELEMENTS`: the bitsandbytes kernels on one core, each next to a memcpy of the
/// same bytes measured in the same run (medians of 5):
/// - NF4 with double quantization from bf16: widen a 1 MiB slice at a time (as `ftq quantize`
///   streams), quantize, collect the absmax, then compress it;
/// - NF4 dequantize to f32 and to bf16 (a 1 MiB float slice at a time, as `ftq dequantize`);
/// - LLM.int8 from bf16 (round to f16, row maxima, rows of 4096).
func bnbBench(_ millions: Int) {
    let n = max(1 << 16, millions * 1_000_000 / 4096 * 4096)
    var seed: UInt64 = 7
    var src = [UInt16](repeating: 0, count: n)
    for k in 0..<n {
        seed = seed &* 6364136223846793005 &+ 1442695040888963407
        let f = Float(Int64(bitPattern: seed) >> 40) * 2e-9
        src[k] = FloatBits.f32ToBF16(f.bitPattern)
    }
    func rate(_ t: Double) -> String { format3(Double(n) / t / 1e9) + " G elements/s" }
    let codec = BnB4BitCodec(type: .nf4, blocksize: 64)
    let slice = 1 << 18
    let floats = UnsafeMutableBufferPointer<Float>.allocate(capacity: slice)
    defer { floats.deallocate() }
    var packed = [UInt8](repeating: 0, count: n / 2)
    var absmax = [Float](repeating: 0, count: n / 64)
    var copyDst = [UInt16](repeating: 0, count: n)
    let tCopy16 = medianTime { src.withUnsafeBytes { s in copyDst.withUnsafeMutableBytes { $0.copyMemory(from: s) } } }
    print("memcpy of \(n * 2 / 1_000_000) MB (the bf16 input): \(rate(tCopy16))")
    let tQ = medianTime {
        src.withUnsafeBytes { s in
            packed.withUnsafeMutableBytes { p in
                absmax.withUnsafeMutableBufferPointer { a in
                    var at = 0
                    while at < n {
                        let m = min(slice, n - at)
                        DTypeConversion.convert(from: .BF16, to: .F32, count: m, src: UnsafeRawBufferPointer(rebasing: s[(at * 2)...]),
                                                dst: UnsafeMutableRawBufferPointer(floats))
                        codec.quantize(UnsafeBufferPointer(rebasing: floats[0..<m]), isEnd: at + m == n,
                                       packed: UnsafeMutableRawBufferPointer(rebasing: p[(at / 2)...]),
                                       absmax: UnsafeMutableBufferPointer(rebasing: a[(at / 64)...]))
                        at += m
                    }
                    _ = BnBDoubleQuant(compressing: UnsafeBufferPointer(a))
                }
            }
        }
    }
    print("NF4 + double quant from bf16: \(rate(tQ))")
    let tF = medianTime {
        src.withUnsafeBufferPointer { s in
            packed.withUnsafeMutableBytes { p in
                absmax.withUnsafeMutableBufferPointer { a in
                    var at = 0
                    while at < n {
                        let m = min(slice, n - at)
                        codec.quantize(bf16: UnsafeBufferPointer(rebasing: s[at..<(at + m)]), isEnd: at + m == n,
                                       packed: UnsafeMutableRawBufferPointer(rebasing: p[(at / 2)...]),
                                       absmax: UnsafeMutableBufferPointer(rebasing: a[(at / 64)...]))
                        at += m
                    }
                    _ = BnBDoubleQuant(compressing: UnsafeBufferPointer(a))
                }
            }
        }
    }
    print("NF4 + double quant from bf16, widened in registers (what ftq quantize runs): \(rate(tF))")
    var x32 = [Float](repeating: 0, count: n)
    for k in 0..<n { x32[k] = Float(bitPattern: FloatBits.bf16ToF32(src[k])) }
    let tK = medianTime {
        x32.withUnsafeBufferPointer { x in
            packed.withUnsafeMutableBytes { p in
                absmax.withUnsafeMutableBufferPointer { codec.quantize(x, isEnd: true, packed: p, absmax: $0) }
            }
        }
    }
    print("  of which the NF4 kernel alone, from f32 in memory: \(rate(tK)) (rule \(BnB4BitFast.defaultRule))")
    for rule in BnB4BitFast.rules {
        let t = medianTime {
            x32.withUnsafeBufferPointer { x in
                packed.withUnsafeMutableBufferPointer { p in
                    absmax.withUnsafeMutableBufferPointer { BnB4BitFast.quantize(codec, x.baseAddress!, blocks: n / 64, packed: p.baseAddress!, absmax: $0.baseAddress!, rule: rule) }
                }
            }
        }
        print("    the kernel with rule \(rule): \(rate(t))")
    }
    let tW = medianTime {
        src.withUnsafeBytes { s in
            var at = 0
            while at < n {
                let m = min(slice, n - at)
                DTypeConversion.convert(from: .BF16, to: .F32, count: m, src: UnsafeRawBufferPointer(rebasing: s[(at * 2)...]),
                                        dst: UnsafeMutableRawBufferPointer(floats))
                at += m
            }
        }
    }
    print("  and widening bf16 to f32 a slice at a time: \(rate(tW))")
    let tDQ = medianTime { _ = absmax.withUnsafeBufferPointer { BnBDoubleQuant(compressing: $0) } }
    print("  and double quantization of the absmax: \(rate(tDQ))")
    let dq = absmax.withUnsafeBufferPointer { BnBDoubleQuant(compressing: $0) }.expand()
    var out32 = [Float](repeating: 0, count: n)
    let tCopy32 = medianTime { out32.withUnsafeMutableBytes { d in src.withUnsafeBytes { s in UnsafeMutableRawBufferPointer(rebasing: d[0..<(n * 2)]).copyMemory(from: s); UnsafeMutableRawBufferPointer(rebasing: d[(n * 2)...]).copyMemory(from: s) } } }
    print("memcpy of \(n * 4 / 1_000_000) MB (an f32 output's size): \(rate(tCopy32))")
    let tD32 = medianTime {
        packed.withUnsafeBytes { p in
            dq.withUnsafeBufferPointer { a in
                out32.withUnsafeMutableBufferPointer { y in
                    var at = 0
                    while at < n {
                        let m = min(slice, n - at)
                        codec.dequantize(UnsafeRawBufferPointer(rebasing: p[(at / 2)...]), absmax: UnsafeBufferPointer(rebasing: a[(at / 64)...]),
                                         count: m, into: UnsafeMutableBufferPointer(rebasing: y[at...]))
                        at += m
                    }
                }
            }
        }
    }
    print("NF4 dequantize to f32: \(rate(tD32))")
    var out16 = [UInt16](repeating: 0, count: n)
    let tD16 = medianTime {
        packed.withUnsafeBytes { p in
            dq.withUnsafeBufferPointer { a in
                out16.withUnsafeMutableBytes { y in
                    var at = 0
                    while at < n {
                        let m = min(slice, n - at)
                        codec.dequantize(UnsafeRawBufferPointer(rebasing: p[(at / 2)...]), absmax: UnsafeBufferPointer(rebasing: a[(at / 64)...]),
                                         count: m, into: UnsafeMutableBufferPointer(rebasing: floats[0..<m]))
                        DTypeConversion.convert(from: .F32, to: .BF16, count: m, src: UnsafeRawBufferPointer(floats),
                                                dst: UnsafeMutableRawBufferPointer(rebasing: y[(at * 2)...]))
                        at += m
                    }
                }
            }
        }
    }
    print("NF4 dequantize to bf16: \(rate(tD16)) (memcpy of the bf16 bytes: \(rate(tCopy16)))")
    var cb = [Int8](repeating: 0, count: 4096)
    var half = [Float](repeating: 0, count: 4096)
    let tI8 = medianTime {
        src.withUnsafeBufferPointer { s in
            for r in 0..<(n / 4096) {
                for i in 0..<4096 {
                    half[i] = Float(bitPattern: FloatBits.f16ToF32(FloatBits.f32ToF16(FloatBits.bf16ToF32(s[r * 4096 + i]))))
                }
                _ = half.withUnsafeBufferPointer { h in cb.withUnsafeMutableBufferPointer { LLMInt8.quantizeRow(h, into: $0) } }
            }
        }
    }
    print("LLM.int8 from bf16: \(rate(tI8))")
}
