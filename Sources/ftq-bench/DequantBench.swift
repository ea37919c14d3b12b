import FTQCore
import FTQKernels

/// `ftq-bench dequant MELEMENTS`: every ggml dequantizer ftq has, on one core, decoding
/// MELEMENTS million values into a 1 MiB float32 slice at a time (as `ftq dequantize` streams),
/// next to a memcpy of the same float32 bytes measured in the same run (medians of 5).
func dequantBench(_ millions: Int) {
    let n = max(1 << 16, millions * 1_000_000 / 256 * 256)
    let slice = 1 << 18
    let out = UnsafeMutableBufferPointer<Float>.allocate(capacity: slice)
    defer { out.deallocate() }
    var src = [Float](repeating: 0.25, count: n)
    var dst = [Float](repeating: 0, count: n)
    let tCopy = medianTime { src.withUnsafeBytes { s in dst.withUnsafeMutableBytes { $0.copyMemory(from: s) } } }
    print("memcpy of \(n * 4 / 1_000_000) MB of float32: \(format3(Double(n) / tCopy / 1e9)) G elements/s")
    src = []
    dst = []
    for name in ["Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"] {
        guard let g = GGMLType.named(name), let kernel = GGMLDequantizer.kernel(for: g) else { continue }
        let blocks = n / g.blockSize
        var bytes = [UInt8](repeating: 0, count: blocks * g.typeSize)
        var seed: UInt64 = 5
        for i in 0..<bytes.count {
            seed = seed &* 6364136223846793005 &+ 1442695040888963407
            bytes[i] = UInt8(truncatingIfNeeded: seed >> 33)
        }
        // Finite float16 scales: clear the top exponent bit of every byte pair's high byte.
        for i in stride(from: 1, to: bytes.count, by: 2) { bytes[i] &= 0x3b }
        let perSlice = slice / g.blockSize
        let t = medianTime {
            bytes.withUnsafeBytes { q in
                var b = 0
                while b < blocks {
                    let m = min(perSlice, blocks - b)
                    kernel(UnsafeRawBufferPointer(rebasing: q[(b * g.typeSize)..<((b + m) * g.typeSize)]),
                           UnsafeMutableBufferPointer(rebasing: out[0..<(m * g.blockSize)]))
                    b += m
                }
            }
        }
        print("\(name): dequantize \(format3(Double(blocks * g.blockSize) / t / 1e9)) G elements/s")
    }
}

/// `ftq-bench compare MELEMENTS`: the error accumulator on two float32 arrays on one core, next
/// to a plain read (a sum) of the same bytes in the same run (medians of 5).
func compareBench(_ millions: Int) {
    let n = max(1 << 16, millions * 1_000_000 / 64 * 64)
    var a = [Float](repeating: 0, count: n), b = a
    var seed: UInt64 = 9
    for i in 0..<n {
        seed = seed &* 6364136223846793005 &+ 1442695040888963407
        a[i] = Float(Int64(bitPattern: seed) >> 40) * 1e-7
        b[i] = a[i] + Float(Int64(bitPattern: seed << 20) >> 50) * 1e-6
    }
    var sink: Float = 0
    let tRead = medianTime {
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                var s = SIMD16<Float>()
                var i = 0
                let ra = UnsafeRawPointer(pa.baseAddress!), rb = UnsafeRawPointer(pb.baseAddress!)
                while i < n {
                    s += ra.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) + rb.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
                    i += 16
                }
                sink += s.sum()
            }
        }
    }
    print("read both arrays (a vector sum): \(format3(Double(n) / tRead / 1e9)) G element pairs/s (sum \(sink))")
    let tAdd = medianTime {
        var s = ErrorStats()
        a.withUnsafeBufferPointer { pa in b.withUnsafeBufferPointer { s.add(pa, $0) } }
        sink += Float(s.sumSqDiff)
    }
    print("checksum \(sink)")
    print("error statistics (float32 runs of 8 into float64 sums): \(format3(Double(n) / tAdd / 1e9)) G element pairs/s")
}
