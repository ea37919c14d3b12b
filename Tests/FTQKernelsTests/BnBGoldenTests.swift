import Foundation
import Testing
@testable import FTQArtifacts
@testable import FTQCore
@testable import FTQKernels

/// A minimal safetensors reader for golden files (the format's own reader is tested elsewhere).
struct GoldenTensors {
    struct Entry { var dtype: String; var shape: [Int]; var data: Data }
    var entries: [String: Entry] = [:]

    init(_ url: URL) throws {
        let d = try Data(contentsOf: url)
        let n = d.withUnsafeBytes { Int($0.loadUnaligned(fromByteOffset: 0, as: UInt64.self)) }
        let header = try JSONSerialization.jsonObject(with: d.subdata(in: 8..<(8 + n))) as! [String: Any]
        for (k, v) in header where k != "__metadata__" {
            let o = v as! [String: Any]
            let off = o["data_offsets"] as! [Int]
            entries[k] = Entry(dtype: o["dtype"] as! String, shape: o["shape"] as! [Int],
                               data: d.subdata(in: (8 + n + off[0])..<(8 + n + off[1])))
        }
    }

    subscript(_ name: String) -> Entry {
        guard let e = entries[name] else { fatalError("golden tensor \(name) missing") }
        return e
    }

    /// The tensor as float32 (F32, BF16 and F16 widened exactly).
    func floats(_ name: String) -> [Float] {
        let e = self[name]
        return e.data.withUnsafeBytes { raw in
            switch e.dtype {
            case "F32": return (0..<(e.data.count / 4)).map { Float(bitPattern: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)) }
            case "BF16": return (0..<(e.data.count / 2)).map { Float(bitPattern: FloatBits.bf16ToF32(raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self))) }
            case "F16": return (0..<(e.data.count / 2)).map { Float(bitPattern: FloatBits.f16ToF32(raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self))) }
            default: fatalError("\(name) is \(e.dtype)")
            }
        }
    }

    func bytes(_ name: String) -> [UInt8] { [UInt8](self[name].data) }
}

/// ftq's bitsandbytes codecs against golden files made by bitsandbytes itself on the CPU
/// (tools/golden/make_bnb.py, testdata/golden/bnb/README.md).
@Suite struct BnBGoldenTests {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("testdata/golden/bnb")

    static func json(_ name: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent(name))) as! [String: Any]
    }

    static func bits(_ x: [Float]) -> [UInt32] { x.map(\.bitPattern) }

    @Test func codeTables() throws {
        let codes = try Self.json("codes.json")
        #expect((codes["nf4"] as! [Int]).map(UInt32.init) == BnB4BitType.nf4.codeBits)
        #expect((codes["fp4"] as! [Int]).map(UInt32.init) == BnB4BitType.fp4.codeBits)
        #expect((codes["dynamic"] as! [Int]).map(UInt32.init) == BnBDynamicCode.bits)
        // The FP4 rank order is the stable sort of its code.
        let c = BnB4BitType.fp4.code
        let order = (0..<16).sorted { c[$0] < c[$1] || (c[$0] == c[$1] && $0 < $1) }.map(UInt8.init)
        #expect(order == BnB4BitType.fp4.sortedNibbles)
    }

    /// The same generator as mean_input in tools/golden/make_bnb.py.
    static func meanInput(_ n: Int) -> [Float] {
        (0..<n).map { i in
            let h = (UInt64(i) &* 2654435761) & 0xFFFF_FFFF
            return Float(h >> 8) * Float(sign: .plus, exponent: -20, significand: 1)
        }
    }

    @Test func torchMeanOfFloat32() throws {
        let cases = try Self.json("mean.json")["cases"] as! [[String: Any]]
        #expect(cases.count > 30)
        for c in cases {
            let n = c["n"] as! Int
            let x = Self.meanInput(n)
            let (sum, mean) = x.withUnsafeBufferPointer { (TorchReduction.sum($0), TorchReduction.mean($0)) }
            #expect(sum.bitPattern == UInt32(c["sum"] as! Int), "sum of \(n)")
            #expect(mean.bitPattern == UInt32(c["mean"] as! Int), "mean of \(n)")
        }
    }

    @Test func blockwise8() throws {
        let g = try GoldenTensors(Self.dir.appendingPathComponent("blockwise8.safetensors"))
        let cases = try Self.json("cases.json")["blockwise8"] as! [[String: Any]]
        #expect(cases.count >= 5)
        for c in cases {
            let name = c["name"] as! String
            let x = g.floats("\(name).input")
            for bs in c["blocksizes"] as! [Int] {
                var q = [UInt8](repeating: 0, count: x.count)
                var am = [Float](repeating: 0, count: (x.count + bs - 1) / bs)
                x.withUnsafeBufferPointer { xp in
                    q.withUnsafeMutableBufferPointer { qp in
                        am.withUnsafeMutableBufferPointer { BnBBlockwise8.dynamic.quantize(xp, blocksize: bs, q: qp, absmax: $0) }
                    }
                }
                #expect(q == g.bytes("\(name).bs\(bs).q"), "\(name) bs\(bs) codes")
                #expect(Self.bits(am) == Self.bits(g.floats("\(name).bs\(bs).absmax")), "\(name) bs\(bs) absmax")
            }
        }
    }

    @Test func fourBit() throws {
        let g = try GoldenTensors(Self.dir.appendingPathComponent("bnb4.safetensors"))
        let doc = try Self.json("cases.json")
        let cases = doc["bnb4"] as! [[String: Any]]
        let shas = doc["bnb4_deq_sha256"] as! [String: String]
        var checked = 0
        for c in cases {
            let name = c["name"] as! String
            let x = g.floats("\(name).input")
            for conf in c["configs"] as! [String] {
                let parts = conf.split(separator: ".")
                let type = BnB4BitType(rawValue: String(parts[0]))!
                let bs = Int(parts[1].dropFirst(2))!
                let dq = parts[2] == "dq"
                let codec = BnB4BitCodec(type: type, blocksize: bs)
                let p = "\(name).\(conf).weight"
                var packed = [UInt8](repeating: 0xAA, count: BnB4BitCodec.packedBytes(x.count))
                var absmax = [Float](repeating: .nan, count: codec.blocks(x.count))
                x.withUnsafeBufferPointer { xp in
                    packed.withUnsafeMutableBytes { pp in
                        absmax.withUnsafeMutableBufferPointer { codec.referenceQuantize(xp, isEnd: true, packed: pp, absmax: $0) }
                    }
                }
                #expect(packed == g.bytes(p), "\(name) \(conf) packed")
                // The fast kernels give the same bytes.
                var fastPacked = [UInt8](repeating: 0x55, count: packed.count)
                var fastAbsmax = [Float](repeating: .nan, count: absmax.count)
                x.withUnsafeBufferPointer { xp in
                    fastPacked.withUnsafeMutableBytes { pp in
                        fastAbsmax.withUnsafeMutableBufferPointer { codec.quantize(xp, isEnd: true, packed: pp, absmax: $0) }
                    }
                }
                #expect(fastPacked == packed && Self.bits(fastAbsmax) == Self.bits(absmax), "\(name) \(conf) fast")
                #expect(g[p].shape == [packed.count, 1])
                #expect(Self.bits(codec.code) == Self.bits(g.floats("\(p).quant_map")))
                let state = try JSONSerialization.jsonObject(with: g[p + ".quant_state.bitsandbytes__" + type.rawValue].data) as! [String: Any]
                #expect(state["blocksize"] as? Int == bs)
                var used = absmax
                if dq {
                    let d = absmax.withUnsafeBufferPointer { BnBDoubleQuant(compressing: $0) }
                    #expect(d.q == g.bytes(p + ".absmax"), "\(name) \(conf) quantized absmax")
                    #expect(Self.bits(d.nestedAbsmax) == Self.bits(g.floats(p + ".nested_absmax")), "\(name) \(conf) nested absmax")
                    // Python writes the offset (a float32 widened to float64) in its shortest
                    // round-trip form, as Swift's description does.
                    let text = String(decoding: g[p + ".quant_state.bitsandbytes__" + type.rawValue].data, as: UTF8.self)
                    let written = text.firstMatch(of: /"nested_offset": ([-0-9.e+]+)/).map { String($0.1) }
                    #expect(written == "\(Double(d.offset))", "\(name) \(conf) offset")
                    #expect(Self.bits(BnBDynamicCode.code) == Self.bits(g.floats(p + ".nested_quant_map")))
                    used = d.expand()
                } else {
                    #expect(Self.bits(absmax) == Self.bits(g.floats(p + ".absmax")), "\(name) \(conf) absmax")
                }
                var y = [Float](repeating: .nan, count: x.count)
                packed.withUnsafeBytes { pp in
                    used.withUnsafeBufferPointer { ap in
                        y.withUnsafeMutableBufferPointer { codec.dequantize(pp, absmax: ap, count: x.count, into: $0) }
                    }
                }
                if let sha = shas["\(name).\(conf)"] {
                    let h = SHA256Hasher()
                    y.withUnsafeBytes { h.update($0) }
                    #expect(h.finalizeHex() == sha, "\(name) \(conf) dequantized")
                } else {
                    #expect(Self.bits(y) == Self.bits(g.floats("\(name).\(conf).deq")), "\(name) \(conf) dequantized")
                }
                checked += 1
            }
        }
        #expect(checked >= 50)
    }

    @Test func llmInt8() throws {
        let g = try GoldenTensors(Self.dir.appendingPathComponent("int8.safetensors"))
        let cases = try Self.json("cases.json")["int8"] as! [[String: Any]]
        #expect(cases.count >= 4)
        for c in cases {
            let name = c["name"] as! String
            let shape = c["shape"] as! [Int]
            let rows = shape[0], cols = shape[1]
            // Linear8bitLt casts the weight to float16 first.
            let w = g.floats("\(name).input").map { Float(bitPattern: FloatBits.f16ToF32(FloatBits.f32ToF16($0.bitPattern))) }
            var cb = [Int8](repeating: 0, count: rows * cols)
            var scb = [Float](repeating: 0, count: rows)
            w.withUnsafeBufferPointer { wp in
                cb.withUnsafeMutableBufferPointer { cp in
                    for r in 0..<rows {
                        scb[r] = LLMInt8.quantizeRow(UnsafeBufferPointer(rebasing: wp[(r * cols)..<((r + 1) * cols)]),
                                                     into: UnsafeMutableBufferPointer(rebasing: cp[(r * cols)..<((r + 1) * cols)]))
                    }
                }
            }
            #expect(cb.map { UInt8(bitPattern: $0) } == g.bytes("\(name).CB"), "\(name) CB")
            #expect(Self.bits(scb) == Self.bits(g.floats("\(name).SCB")), "\(name) SCB")
        }
    }

    /// The fast 4-bit kernels against the reference on random and edge inputs: ties on
    /// thresholds, zeros of both signs, subnormals, partial blocks, odd counts.
    @Test func fastFourBitMatchesReference() {
        var rng = SplitMix(seed: 42)
        for type in BnB4BitType.allCases {
            for bs in BnB4BitType.blockSizes {
                let codec = BnB4BitCodec(type: type, blocksize: bs)
                for n in [bs, 3 * bs, 5 * bs + 1, 2 * bs + 17, 1, 7] {
                    var x = (0..<n).map { _ in Float(rng.normal()) * 0.02 }
                    for i in stride(from: 0, to: n, by: 7) {
                        switch rng.next() % 6 {
                        case 0: x[i] = codec.thresholds[Int(rng.next() % 15)] * (i % 14 == 0 ? 1 : 0.02)
                        case 1: x[i] = 0
                        case 2: x[i] = -0.0
                        case 3: x[i] = Float(bitPattern: UInt32(rng.next() % 0x7fffff))
                        case 4: x[i] = 0.02
                        default: break
                        }
                    }
                    if n > bs { for i in bs..<(2 * bs) { x[i] = 0 } }  // an all-zero block
                    var p1 = [UInt8](repeating: 0, count: BnB4BitCodec.packedBytes(n)), p2 = p1
                    var a1 = [Float](repeating: 0, count: codec.blocks(n)), a2 = a1
                    x.withUnsafeBufferPointer { xp in
                        p1.withUnsafeMutableBytes { pp in a1.withUnsafeMutableBufferPointer { codec.referenceQuantize(xp, isEnd: true, packed: pp, absmax: $0) } }
                        p2.withUnsafeMutableBytes { pp in a2.withUnsafeMutableBufferPointer { codec.quantize(xp, isEnd: true, packed: pp, absmax: $0) } }
                    }
                    #expect(p1 == p2 && Self.bits(a1) == Self.bits(a2), "\(type) bs\(bs) n\(n) quantize")
                    // Both ranking rules of the fast kernel, whichever this build uses by default.
                    for rule in BnB4BitFast.rules where n >= bs {
                        var p3 = [UInt8](repeating: 0, count: (n / bs) * bs / 2)
                        var a4 = [Float](repeating: 0, count: n / bs)
                        x.withUnsafeBufferPointer { xp in
                            p3.withUnsafeMutableBufferPointer { pp in
                                a4.withUnsafeMutableBufferPointer { BnB4BitFast.quantize(codec, xp.baseAddress!, blocks: n / bs, packed: pp.baseAddress!, absmax: $0.baseAddress!, rule: rule) }
                            }
                        }
                        #expect(p3[...] == p1[0..<p3.count] && Self.bits(a4)[...] == Self.bits(a1)[0..<a4.count], "\(type) bs\(bs) n\(n) \(rule)")
                    }
                    var a3 = [Float](repeating: .nan, count: a1.count)
                    let finite = x.withUnsafeBufferPointer { xp in a3.withUnsafeMutableBufferPointer { codec.absmax(xp, isEnd: true, into: $0) } }
                    #expect(finite && Self.bits(a3) == Self.bits(a1), "\(type) bs\(bs) n\(n) absmax")
                    for bad: Float in [.nan, .infinity, -.infinity] {
                        var y = x
                        y[n - 1 - (n / 3)] = bad
                        let f = y.withUnsafeBufferPointer { yp in a3.withUnsafeMutableBufferPointer { codec.absmax(yp, isEnd: true, into: $0) } }
                        #expect(!f, "\(type) bs\(bs) n\(n) \(bad) found")
                    }
                    var y1 = [Float](repeating: 0, count: n), y2 = y1
                    p1.withUnsafeBytes { pp in
                        a1.withUnsafeBufferPointer { ap in
                            y1.withUnsafeMutableBufferPointer { codec.referenceDequantize(pp, absmax: ap, count: n, into: $0) }
                            y2.withUnsafeMutableBufferPointer { codec.dequantize(pp, absmax: ap, count: n, into: $0) }
                        }
                    }
                    #expect(Self.bits(y1) == Self.bits(y2), "\(type) bs\(bs) n\(n) dequantize")
                }
            }
        }
    }
}

/// A small deterministic generator for test inputs.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// An approximately normal value (sum of uniforms).
    mutating func normal() -> Double {
        var s = 0.0
        for _ in 0..<4 { s += Double(next() >> 11) / Double(1 << 53) }
        return (s - 2) * 1.7
    }
}
