// ftq-bench: in-process timings that a whole-process timer cannot isolate.
//
//   ftq-bench header PATH [RUNS]     parse a model's headers RUNS times (default 50)
//   ftq-bench f32-to-f16 MB          convert MB megabytes of F32 to F16, next to a memcpy of the same bytes
//   ftq-bench kquant MB              quantize MB megabytes of F32 to Q4_K and Q6_K on one core (the lane
//                                    kernel and the scalar reference), next to a memcpy of the same bytes
//   ftq-bench bnb MELEMENTS          NF4 (+ double quant) quantize from bf16, NF4 dequantize to f32 and bf16,
//                                    LLM.int8 from bf16, on one core, next to memcpy of the same bytes
//   ftq-bench compare MELEMENTS      the error accumulator of ftq compare, one core, next to a read of the bytes
//   ftq-bench dequant MELEMENTS      every ggml dequantizer, one core, next to memcpy of the float32 bytes
//   ftq-bench merge ROWS             the LoRA delta (rank 16, ROWS x 4096), fast kernel and reference, one core
//   ftq-bench convert-hashing IN OUT [RUNS]
//                                    convert IN to OUT (a .gguf or .safetensors name) as `ftq convert`
//                                    does, without and with hashing while writing, alternately
//
// Run in release: swift run -c release ftq-bench ...
import FTQCore
import FTQFormats
import FTQArtifacts
import FTQKernels
#if canImport(Glibc)
import Glibc
#endif

func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

/// The median wall time of 5 runs of `body`.
func medianTime(_ body: () -> Void) -> Double {
    var ts: [Double] = []
    for _ in 0..<5 {
        let t0 = now()
        body()
        ts.append(now() - t0)
    }
    return median(ts)
}

/// n seeded pseudo-random float32 values of magnitude about 0.01 (the same in every run).
func benchFloats(_ n: Int) -> [Float] {
    var x = [Float](repeating: 0, count: n)
    var seed: UInt64 = 42
    for k in 0..<n {
        seed = seed &* 6364136223846793005 &+ 1442695040888963407
        x[k] = Float(Int64(bitPattern: seed) >> 40) * 1e-9
    }
    return x
}

let args = CommandLine.arguments
guard args.count >= 3 else {
    print("usage: ftq-bench header PATH [RUNS] | ftq-bench f32-to-f16 MB")
    exit(2)
}
do {
    switch args[1] {
    case "header":
        let runs = args.count > 3 ? Int(args[3]) ?? 50 : 50
        var times: [Double] = []
        var tensors = 0, keys = 0
        for _ in 0..<runs {
            let t0 = now()
            let m = try ModelOpener.open(args[2])
            times.append(now() - t0)
            tensors = m.tensors.count
            keys = m.metadata.count
        }
        print("header parse: \(tensors) tensors, \(keys) metadata keys, median \(String(format3(median(times) * 1000))) ms, min \(String(format3(times.min()! * 1000))) ms over \(runs) runs")
    case "f32-to-f16":
        let mb = Int(args[2]) ?? 256
        let n = mb << 18  // floats
        let src = UnsafeMutableRawBufferPointer.allocate(byteCount: n * 4, alignment: 64)
        let dst = UnsafeMutableRawBufferPointer.allocate(byteCount: n * 4, alignment: 64)
        let f = src.bindMemory(to: Float.self)
        for k in 0..<n { f[k] = Float(k % 1000) * 0.001 - 0.5 }
        var tConv: [Double] = [], tCopy: [Double] = []
        for _ in 0..<5 {
            var t0 = now()
            DTypeConversion.convert(from: .F32, to: .F16, count: n, src: UnsafeRawBufferPointer(src), dst: dst)
            tConv.append(now() - t0)
            t0 = now()
            dst.baseAddress!.copyMemory(from: src.baseAddress!, byteCount: n * 4)
            tCopy.append(now() - t0)
        }
        let gb = Double(n * 4) / 1e9
        print("f32->f16: \(format3(gb / median(tConv))) GB/s of input; memcpy of the same bytes: \(format3(gb / median(tCopy))) GB/s")
    case "ggml-legacy":
        // Reference quantize and dequantize of each legacy type on one core, next to a memcpy
        // of the float32 input.
        let n = (Int(args[2]) ?? 16) << 20
        let x = benchFloats(n)
        var y = [Float](repeating: 0, count: n)
        var t0 = now()
        x.withUnsafeBytes { s in y.withUnsafeMutableBytes { $0.copyMemory(from: s) } }
        let copy = now() - t0
        print("memcpy of \(n * 4 / 1_000_000) MB of float32: \(format3(Double(n) / copy / 1e9)) G elements/s")
        for t in GGMLLegacyQuant.allCases {
            // Medians of 3 runs into memory already touched (the first run faults the pages in).
            var q = [UInt8](repeating: 1, count: n / 32 * t.blockBytes)
            var tqs: [Double] = [], tds: [Double] = []
            for _ in 0..<3 {
                t0 = now()
                x.withUnsafeBufferPointer { src in q.withUnsafeMutableBytes { t.quantize(src, into: $0) } }
                tqs.append(now() - t0)
                t0 = now()
                q.withUnsafeBytes { src in y.withUnsafeMutableBufferPointer { t.dequantize(src, into: $0) } }
                tds.append(now() - t0)
            }
            let tq = median(tqs), td = median(tds)
            print("\(t.rawValue): quantize \(format3(Double(n) / tq / 1e9)) G elements/s, dequantize \(format3(Double(n) / td / 1e9)) G elements/s")
        }
    case "kquant":
        // Q4_K and Q6_K quantize on one core (the best of three runs), next to a memcpy of the
        // float32 input; the scalar reference on an eighth of it.
        let n = max(2048, ((Int(args[2]) ?? 64) << 18) / 2048 * 2048)
        let x = benchFloats(n)
        var y = [Float](repeating: 0, count: n)
        var t0 = now()
        x.withUnsafeBytes { s in y.withUnsafeMutableBytes { $0.copyMemory(from: s) } }
        let copy = now() - t0
        print("memcpy of \(n * 4 / 1_000_000) MB of float32: \(format3(Double(n) / copy / 1e9)) G elements/s")
        for t in [GGMLKQuant.Q4_K, .Q6_K] {
            var q = [UInt8](repeating: 0, count: n / 256 * t.blockBytes)
            var tq = Double.infinity
            for _ in 0..<3 {
                t0 = now()
                x.withUnsafeBufferPointer { src in q.withUnsafeMutableBytes { t.quantize(src, into: $0) } }
                tq = min(tq, now() - t0)
            }
            let m = n / 8
            var r = [UInt8](repeating: 0, count: m / 256 * t.blockBytes)
            t0 = now()
            x.withUnsafeBufferPointer { src in
                r.withUnsafeMutableBytes { t.referenceQuantize(UnsafeBufferPointer(rebasing: src[0..<m]), into: $0) }
            }
            let tr = now() - t0
            let same = r.elementsEqual(q[0..<r.count])
            print("\(t.rawValue): quantize \(format3(Double(n) / tq / 1e9)) G elements/s (\(format3(tq)) s for \(n) elements), reference \(format3(Double(m) / tr / 1e9)) G elements/s, same bytes: \(same)")
        }
    case "bnb":
        bnbBench(Int(args[2]) ?? 64)
    case "dequant":
        dequantBench(Int(args[2]) ?? 64)
    case "compare":
        compareBench(Int(args[2]) ?? 64)
    case "merge":
        mergeBench(Int(args[2]) ?? 512)
    case "convert-hashing":
        guard args.count >= 4 else { print("usage: ftq-bench convert-hashing IN OUT [RUNS]"); exit(2) }
        let runs = args.count > 4 ? Int(args[4]) ?? 3 : 3
        let model = try ModelOpener.open(args[2])
        let out = args[3]
        let target: OutputTarget = out.hasSuffix(".gguf") ? .gguf(out) : .safetensorsFile(out)
        var plain: [Double] = [], hashed: [Double] = []
        for _ in 0..<runs {
            for withHash in [false, true] {
                let t0 = now()
                var opts = ConvertOptions(dtype: .F16, overwrite: true, quiet: true)
                var inputs: FileHashing.Background? = nil
                if withHash {
                    // As ftq convert: inputs on the other core, outputs and tensors while written.
                    inputs = FileHashing.Background(model.files.map(\.path), threads: 1)
                    opts.digest = FileHashing.sha256
                }
                _ = try Converter(model: model, options: opts).run(to: target)
                _ = try inputs?.wait()
                (withHash ? { hashed.append(now() - t0) } : { plain.append(now() - t0) })()
            }
        }
        let p = median(plain), h = median(hashed)
        print("convert without hashing: median \(format3(p)) s; with input, output and tensor hashing: median \(format3(h)) s; overhead \(format3((h / p - 1) * 100))% over \(runs) runs")
    default:
        print("unknown benchmark \(args[1])")
        exit(2)
    }
} catch {
    print("error: \(error)")
    exit(1)
}

func format3(_ x: Double) -> String {
    let r = (x * 1000).rounded() / 1000
    return "\(r)"
}
