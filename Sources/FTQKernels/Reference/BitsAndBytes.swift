import FTQCore

/// bitsandbytes' codecs as its CPU implementation computes them: the scalar reference, which is
/// the specification (formats/bnb-quants.md). All arithmetic is float32, in the order given.

/// The 4-bit data types: NF4 (normal-float quantiles) and FP4 (a 1-2-1 float without infinities).
public enum BnB4BitType: String, CaseIterable, Sendable {
    case nf4, fp4

    /// The code table, indexed by nibble (bitsandbytes' `quant_map`), as float32 bit patterns
    /// (formats/bnb-quants.md, "Code tables").
    public var codeBits: [UInt32] {
        switch self {
        case .nf4:
            return [0xbf800000, 0xbf3239b1, 0xbf066b30, 0xbeca32a0, 0xbe91a24d, 0xbe3d353f, 0xbdba7871, 0x00000000,
                    0x3da2faff, 0x3e24cae3, 0x3e7c04dd, 0x3ead033a, 0x3ee1a4b8, 0x3f1007ab, 0x3f3913b3, 0x3f800000]
        case .fp4:
            return [0x00000000, 0x3baaaaab, 0x3f2aaaab, 0x3f800000, 0x3eaaaaab, 0x3f000000, 0x3e2aaaab, 0x3e800000,
                    0x00000000, 0xbbaaaaab, 0xbf2aaaab, 0xbf800000, 0xbeaaaaab, 0xbf000000, 0xbe2aaaab, 0xbe800000]
        }
    }

    public var code: [Float] { codeBits.map(Float.init(bitPattern:)) }

    /// Nibbles in ascending order of their code value (ties: the lower nibble first). The
    /// quantizer finds a value's rank among the sorted codes and stores the nibble of that rank.
    public var sortedNibbles: [UInt8] {
        switch self {
        case .nf4: return Array(0...15)
        case .fp4: return [11, 10, 13, 12, 15, 14, 9, 0, 8, 1, 6, 7, 4, 5, 2, 3]
        }
    }

    /// The 15 decision thresholds: float32 midpoints of neighbouring sorted codes,
    /// (a + b) / 2 computed in float32.
    public var thresholds: [Float] {
        let c = code, s = sortedNibbles
        return (0..<15).map { (c[Int(s[$0])] + c[Int(s[$0 + 1])]) / 2 }
    }

    /// The block sizes bitsandbytes accepts.
    public static let blockSizes = [32, 64, 128, 256, 512, 1024, 2048, 4096]
}

/// 4-bit blockwise quantization (formats/bnb-quants.md, "4-bit").
public struct BnB4BitCodec: Sendable {
    public let type: BnB4BitType
    public let blocksize: Int
    /// Thresholds and the nibble of each rank, precomputed.
    public let thresholds: [Float]
    public let nibbleOfRank: [UInt8]
    public let code: [Float]
    /// (code[hi], code[lo]) for every byte, for the fast dequantizer.
    let pairs: [SIMD2<Float>]
    /// The tables of the fast kernel's bucket ranking, where the thresholds admit it.
    let bucketRule: BucketRule?

    /// A codec for `type`; `code` replaces the table for dequantization (a checkpoint's own
    /// stored `quant_map`), quantization always uses the type's table.
    public init(type: BnB4BitType, blocksize: Int, code: [Float]? = nil) {
        precondition(BnB4BitType.blockSizes.contains(blocksize) && (code?.count ?? 16) == 16)
        self.type = type
        self.blocksize = blocksize
        thresholds = type.thresholds
        nibbleOfRank = type.sortedNibbles
        self.code = code ?? type.code
        pairs = BnB4BitFast.pairTable(self.code)
        bucketRule = BucketRule(thresholds)
    }

    /// The smallest absmax used as a divisor (the float32 nearest 1e-38, a subnormal).
    public static let absmaxFloor = Float(1e-38)

    /// The nibble of a scaled value in [-1, 1]: the number of thresholds strictly below it,
    /// mapped through the sorted order. A value exactly on a threshold takes the lower code.
    @inline(__always)
    public func nibble(_ v: Float) -> UInt8 {
        var rank = 0
        for t in thresholds where t < v { rank += 1 }
        return nibbleOfRank[rank]
    }

    /// Bytes of packed data for `n` elements: two per byte, an odd count padded.
    public static func packedBytes(_ n: Int) -> Int { n / 2 + n % 2 }
    /// Blocks (absmax values) for `n` elements.
    public func blocks(_ n: Int) -> Int { (n + blocksize - 1) / blocksize }

    /// The absmax vector that quantize stores for `x` (a slice starting on a block boundary;
    /// `isEnd` as for quantize): max |x| per full block, max(max |x|, 1e-38) for a partial last
    /// block. Returns false, with `absmax` unspecified, when `x` holds an infinity or a NaN.
    public func absmax(_ x: UnsafeBufferPointer<Float>, isEnd: Bool, into absmax: UnsafeMutableBufferPointer<Float>) -> Bool {
        let n = x.count
        precondition((isEnd || n % blocksize == 0) && absmax.count >= blocks(n))
        let full = n / blocksize
        var finite = true
        if full > 0 {
            absmax.withMemoryRebound(to: UInt32.self) { bits in
                BnB4BitFast.maxMagnitudeBits(x.baseAddress!, bs: blocksize, blocks: full, into: bits.baseAddress!)
                for b in 0..<full where bits[b] >= 0x7f80_0000 { finite = false }
            }
        }
        if full * blocksize < n {
            var m: UInt32 = 0
            for i in (full * blocksize)..<n { m = Swift.max(m, x[i].bitPattern & 0x7fff_ffff) }
            if m >= 0x7f80_0000 { finite = false }
            absmax[full] = Swift.max(Float(bitPattern: m), Self.absmaxFloor)
        }
        return finite
    }

    /// absmax(_:isEnd:into:) computed from BF16 or F16 values as they are stored (little-endian
    /// bit patterns, not widened): the same float32 results, as widening is exact and monotonic.
    public func absmax(half x: UnsafeRawBufferPointer, isBF16: Bool, isEnd: Bool, into absmax: UnsafeMutableBufferPointer<Float>) -> Bool {
        let n = x.count / 2
        precondition((isEnd || n % blocksize == 0) && absmax.count >= blocks(n))
        let full = n / blocksize
        let limit: UInt16 = isBF16 ? 0x7f80 : 0x7c00
        func widen(_ h: UInt16) -> Float {
            Float(bitPattern: isBF16 ? UInt32(h) << 16 : FloatBits.f16ToF32(h))
        }
        var finite = true
        if full > 0 {
            let bits = UnsafeMutablePointer<UInt16>.allocate(capacity: full)
            defer { bits.deallocate() }
            BnB4BitFast.maxMagnitudeBits16(x.baseAddress!, bs: blocksize, blocks: full, into: bits)
            for b in 0..<full {
                if bits[b] >= limit { finite = false }
                absmax[b] = widen(bits[b])
            }
        }
        if full * blocksize < n {
            var m: UInt16 = 0
            for i in (full * blocksize)..<n { m = Swift.max(m, x.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self) & 0x7fff) }
            if m >= limit { finite = false }
            absmax[full] = Swift.max(widen(m), Self.absmaxFloor)
        }
        return finite
    }

    /// Quantizes like referenceQuantize, with the fastest kernel that gives the same bytes.
    /// Full blocks take the vectorised kernel; a partial last block (and an odd count) the
    /// reference. Values must be finite.
    public func quantize(_ x: UnsafeBufferPointer<Float>, isEnd: Bool,
                         packed: UnsafeMutableRawBufferPointer, absmax: UnsafeMutableBufferPointer<Float>) {
        quantize(count: x.count, isEnd: isEnd, packed: packed, absmax: absmax, fullBlocks: { full, p, a in
            BnB4BitFast.quantize(self, x.baseAddress!, blocks: full, packed: p, absmax: a)
        }, tail: { done in Array(x[done...]) })
    }

    /// quantize(_:isEnd:packed:absmax:) of BF16 values given as bit patterns, without a float32
    /// copy of full blocks: the same bytes as quantizing their float32 widening.
    public func quantize(bf16 x: UnsafeBufferPointer<UInt16>, isEnd: Bool,
                         packed: UnsafeMutableRawBufferPointer, absmax: UnsafeMutableBufferPointer<Float>) {
        quantize(count: x.count, isEnd: isEnd, packed: packed, absmax: absmax, fullBlocks: { full, p, a in
            BnB4BitFast.quantize(self, bf16: x.baseAddress!, blocks: full, packed: p, absmax: a)
        }, tail: { done in x[done...].map { Float(bitPattern: UInt32($0) << 16) } })
    }

    /// The shared part of both: `fullBlocks` quantizes the full blocks, the reference the rest
    /// (`tail(done)` gives its values as float32).
    @inline(__always)
    func quantize(count n: Int, isEnd: Bool, packed: UnsafeMutableRawBufferPointer, absmax: UnsafeMutableBufferPointer<Float>,
                  fullBlocks: (Int, UnsafeMutablePointer<UInt8>, UnsafeMutablePointer<Float>) -> Void, tail: (Int) -> [Float]) {
        precondition(isEnd || (n % blocksize == 0))
        precondition(packed.count >= Self.packedBytes(n) && absmax.count >= blocks(n))
        let full = n / blocksize
        if full > 0 {
            fullBlocks(full, packed.baseAddress!.assumingMemoryBound(to: UInt8.self), absmax.baseAddress!)
        }
        let done = full * blocksize
        if done < n {
            tail(done).withUnsafeBufferPointer {
                referenceQuantize($0, isEnd: true, packed: UnsafeMutableRawBufferPointer(rebasing: packed[(done / 2)...]),
                                  absmax: UnsafeMutableBufferPointer(rebasing: absmax[full...]))
            }
        }
    }

    /// Dequantizes like referenceDequantize: full blocks through a table of code pairs, then one
    /// product per value; the rest by the reference.
    public func dequantize(_ packed: UnsafeRawBufferPointer, absmax: UnsafeBufferPointer<Float>, count n: Int,
                           into y: UnsafeMutableBufferPointer<Float>) {
        precondition(packed.count >= Self.packedBytes(n) && absmax.count >= blocks(n) && y.count >= n)
        let full = n / blocksize
        if full > 0 {
            pairs.withUnsafeBufferPointer { pp in
                BnB4BitFast.dequantize(pairs: pp.baseAddress!, bs: blocksize, packed.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                       blocks: full, absmax: absmax.baseAddress!, into: y.baseAddress!)
            }
        }
        let done = full * blocksize
        if done < n {
            referenceDequantize(UnsafeRawBufferPointer(rebasing: packed[(done / 2)...]), absmax: UnsafeBufferPointer(rebasing: absmax[full...]),
                                count: n - done, into: UnsafeMutableBufferPointer(rebasing: y[done...]))
        }
    }

    /// Quantizes `x`, a whole tensor or a slice of one that starts on a block boundary:
    /// every block of `x` but the last must be full; `x.count` must be even unless `x` ends the
    /// tensor. `isEnd` says whether `x` ends the tensor, so that its last block, if partial, is
    /// quantized as bitsandbytes quantizes a tensor's partial last block. Writes
    /// packedBytes(x.count) bytes to `packed` and blocks(x.count) values to `absmax`.
    public func referenceQuantize(_ x: UnsafeBufferPointer<Float>, isEnd: Bool,
                                  packed: UnsafeMutableRawBufferPointer, absmax: UnsafeMutableBufferPointer<Float>) {
        let n = x.count
        precondition(isEnd || (n % blocksize == 0))
        precondition(packed.count >= Self.packedBytes(n) && absmax.count >= blocks(n))
        var pending: UInt8 = 0
        for b in 0..<blocks(n) {
            let start = b * blocksize, end = min(n, start + blocksize)
            var am: Float = 0
            for i in start..<end { am = Swift.max(am, abs(x[i])) }
            let full = end - start == blocksize
            if full {
                // A full block: the absmax is stored as it is; values are multiplied by the
                // float32 reciprocal of max(absmax, 1e-38).
                absmax[b] = am
                let r = 1 / Swift.max(am, Self.absmaxFloor)
                for i in start..<end {
                    let q = nibble(Swift.min(Swift.max(x[i] * r, -1), 1))
                    if i & 1 == 0 { pending = q } else { packed[i >> 1] = pending << 4 | q }
                }
            } else {
                // The partial last block: max(absmax, 1e-38) is stored, and values are divided by it.
                let d = Swift.max(am, Self.absmaxFloor)
                absmax[b] = d
                for i in start..<end {
                    let q = nibble(Swift.min(Swift.max(x[i] / d, -1), 1))
                    if i & 1 == 0 { pending = q } else { packed[i >> 1] = pending << 4 | q }
                }
            }
        }
        // An odd count: the last element is paired with a padding 0.0.
        if n & 1 == 1 { packed[n >> 1] = pending << 4 | nibble(0) }
    }

    /// Dequantizes `n` elements of packed data, the absmax of each block given, into float32:
    /// y = code[nibble] * absmax[i / blocksize] (one float32 product).
    public func referenceDequantize(_ packed: UnsafeRawBufferPointer, absmax: UnsafeBufferPointer<Float>, count n: Int,
                                    into y: UnsafeMutableBufferPointer<Float>) {
        precondition(packed.count >= Self.packedBytes(n) && absmax.count >= blocks(n) && y.count >= n)
        for i in 0..<n {
            let byte = packed[i >> 1]
            let q = i & 1 == 0 ? byte >> 4 : byte & 15
            y[i] = code[Int(q)] * absmax[i / blocksize]
        }
    }
}

/// bitsandbytes' signed 8-bit dynamic code table (`create_dynamic_map()`): 256 float32 values in
/// ascending order, code[127] = 0, code[255] = 1 (formats/bnb-quants.md, "Code tables").
public enum BnBDynamicCode {
    public static let bits: [UInt32] = [
        0xbf7e3333, 0xbf7a999a, 0xbf770000, 0xbf736666, 0xbf6fcccd, 0xbf6c3333, 0xbf68999a, 0xbf650000,
        0xbf616666, 0xbf5dcccd, 0xbf5a3333, 0xbf56999a, 0xbf530000, 0xbf4f6666, 0xbf4bcccd, 0xbf483333,
        0xbf44999a, 0xbf410000, 0xbf3d6666, 0xbf39cccd, 0xbf363334, 0xbf32999a, 0xbf2f0000, 0xbf2b6666,
        0xbf27cccd, 0xbf243334, 0xbf20999a, 0xbf1d0000, 0xbf196666, 0xbf15cccd, 0xbf123334, 0xbf0e999a,
        0xbf0b0000, 0xbf076666, 0xbf03cccc, 0xbf003333, 0xbef93332, 0xbef20000, 0xbeeacccc, 0xbee3999a,
        0xbedc6666, 0xbed53333, 0xbece0000, 0xbec6cccc, 0xbebf999a, 0xbeb86666, 0xbeb13333, 0xbeaa0000,
        0xbea2cccc, 0xbe9b999a, 0xbe946666, 0xbe8d3334, 0xbe860000, 0xbe7d9999, 0xbe6f3333, 0xbe60cccd,
        0xbe526666, 0xbe440000, 0xbe35999a, 0xbe273333, 0xbe18cccd, 0xbe0a6666, 0xbdf80000, 0xbddb3334,
        0xbdc9eb85, 0xbdc428f7, 0xbdbe6667, 0xbdb8a3d7, 0xbdb2e148, 0xbdad1eb8, 0xbda75c2a, 0xbda1999a,
        0xbd9bd70a, 0xbd96147b, 0xbd9051eb, 0xbd8a8f5d, 0xbd84cccd, 0xbd7e147b, 0xbd728f5d, 0xbd670a3d,
        0xbd5b851f, 0xbd500000, 0xbd447ae1, 0xbd38f5c3, 0xbd2d70a3, 0xbd21eb85, 0xbd166667, 0xbd0ae148,
        0xbcfeb852, 0xbce7ae15, 0xbcd0a3d7, 0xbcb9999a, 0xbca28f5d, 0xbc8b851f, 0xbc68f5c3, 0xbc3ae148,
        0xbc1f3b64, 0xbc160418, 0xbc0ccccd, 0xbc039581, 0xbbf4bc6a, 0xbbe24dd3, 0xbbcfdf3b, 0xbbbd70a4,
        0xbbab020d, 0xbb989374, 0xbb8624dd, 0xbb676c8a, 0xbb428f5c, 0xbb1db22d, 0xbaf1a9fc, 0xbaa7ef9d,
        0xba7765ff, 0xba59e83e, 0xba3c6a80, 0xba1eecc1, 0xba016f01, 0xb9c7e283, 0xb98ce705, 0xb923d70b,
        0xb8ba1f4b, 0xb88aefb3, 0xb8378034, 0xb7b24206, 0xb70205ff, 0xb65a1a94, 0xb513a3b7, 0x00000000,
        0x3513a3b7, 0x365a1a94, 0x370205ff, 0x37b24206, 0x38378034, 0x388aefb3, 0x38ba1f4b, 0x3923d70b,
        0x398ce705, 0x39c7e283, 0x3a016f01, 0x3a1eecc1, 0x3a3c6a80, 0x3a59e83e, 0x3a7765ff, 0x3aa7ef9d,
        0x3af1a9fc, 0x3b1db22d, 0x3b428f5c, 0x3b676c8a, 0x3b8624dd, 0x3b989374, 0x3bab020d, 0x3bbd70a4,
        0x3bcfdf3b, 0x3be24dd3, 0x3bf4bc6a, 0x3c039581, 0x3c0ccccd, 0x3c160418, 0x3c1f3b64, 0x3c3ae148,
        0x3c68f5c3, 0x3c8b851f, 0x3ca28f5d, 0x3cb9999a, 0x3cd0a3d7, 0x3ce7ae15, 0x3cfeb852, 0x3d0ae148,
        0x3d166667, 0x3d21eb85, 0x3d2d70a3, 0x3d38f5c3, 0x3d447ae1, 0x3d500000, 0x3d5b851f, 0x3d670a3d,
        0x3d728f5d, 0x3d7e147b, 0x3d84cccd, 0x3d8a8f5d, 0x3d9051eb, 0x3d96147b, 0x3d9bd70a, 0x3da1999a,
        0x3da75c2a, 0x3dad1eb8, 0x3db2e148, 0x3db8a3d7, 0x3dbe6667, 0x3dc428f7, 0x3dc9eb85, 0x3ddb3334,
        0x3df80000, 0x3e0a6666, 0x3e18cccd, 0x3e273333, 0x3e35999a, 0x3e440000, 0x3e526666, 0x3e60cccd,
        0x3e6f3333, 0x3e7d9999, 0x3e860000, 0x3e8d3334, 0x3e946666, 0x3e9b999a, 0x3ea2cccc, 0x3eaa0000,
        0x3eb13333, 0x3eb86666, 0x3ebf999a, 0x3ec6cccc, 0x3ece0000, 0x3ed53333, 0x3edc6666, 0x3ee3999a,
        0x3eeacccc, 0x3ef20000, 0x3ef93332, 0x3f003333, 0x3f03cccc, 0x3f076666, 0x3f0b0000, 0x3f0e999a,
        0x3f123334, 0x3f15cccd, 0x3f196666, 0x3f1d0000, 0x3f20999a, 0x3f243334, 0x3f27cccd, 0x3f2b6666,
        0x3f2f0000, 0x3f32999a, 0x3f363334, 0x3f39cccd, 0x3f3d6666, 0x3f410000, 0x3f44999a, 0x3f483333,
        0x3f4bcccd, 0x3f4f6666, 0x3f530000, 0x3f56999a, 0x3f5a3333, 0x3f5dcccd, 0x3f616666, 0x3f650000,
        0x3f68999a, 0x3f6c3333, 0x3f6fcccd, 0x3f736666, 0x3f770000, 0x3f7a999a, 0x3f7e3333, 0x3f800000,
    ]
    public static let code: [Float] = bits.map(Float.init(bitPattern:))
}

/// bitsandbytes' 8-bit blockwise quantizer as its CPU kernel computes it: not the exact
/// nearest code, but a lookup in a table of 65536 evenly spaced points of [-1, 1]
/// (formats/bnb-quants.md, "8-bit blockwise").
public struct BnBBlockwise8: Sendable {
    public let code: [Float]
    /// lut[i]: the code index of the point float32(float32(2i) / 65535) - 1.
    public let lut: [UInt8]

    public init(code: [Float] = BnBDynamicCode.code) {
        precondition(code.count == 256)
        self.code = code
        let mids = (0..<255).map { (code[$0] + code[$0 + 1]) * 0.5 }
        var lut = [UInt8](repeating: 0, count: 65536)
        var k = 0
        for i in 0..<65536 {
            let v = Float(2 * i) / 65535 - 1
            while k < 255 && mids[k] < v { k += 1 }
            lut[i] = UInt8(k)
        }
        self.lut = lut
    }

    public static let dynamic = BnBBlockwise8()

    /// Quantizes `x` in blocks of `blocksize` (the last may be partial): absmax[b] = max|x| of
    /// the block; an all-zero block gets index 0 for every value; otherwise each value is
    /// multiplied by the float32 reciprocal of the absmax and looked up.
    public func quantize(_ x: UnsafeBufferPointer<Float>, blocksize: Int,
                         q: UnsafeMutableBufferPointer<UInt8>, absmax: UnsafeMutableBufferPointer<Float>) {
        let blocks = (x.count + blocksize - 1) / blocksize
        precondition(q.count >= x.count && absmax.count >= blocks)
        for b in 0..<blocks {
            let start = b * blocksize, end = Swift.min(x.count, start + blocksize)
            var am: Float = 0
            for i in start..<end { am = Swift.max(am, abs(x[i])) }
            absmax[b] = am
            if am == 0 {
                for i in start..<end { q[i] = 0 }
                continue
            }
            let r = 1 / am
            for i in start..<end { q[i] = Self.lookup(lut, x[i] * r) }
        }
    }

    /// The table lookup of a scaled value: t = (clamp(v, -1, 1) + 1) * 0.5, then the table
    /// index is trunc(fma(t, 65535, 0.5)), all in float32.
    @inline(__always)
    static func lookup(_ lut: [UInt8], _ v: Float) -> UInt8 {
        let c = Swift.min(Swift.max(v, -1), 1)
        let t = (c + 1) * 0.5
        let f = Float(0.5).addingProduct(t, 65535)
        return lut[Int(f.rounded(.towardZero))]
    }

    /// y = code[q] * absmax[i / blocksize] (one float32 product).
    public func dequantize(_ q: UnsafeBufferPointer<UInt8>, absmax: UnsafeBufferPointer<Float>, blocksize: Int,
                           into y: UnsafeMutableBufferPointer<Float>) {
        for i in 0..<q.count { y[i] = code[Int(q[i])] * absmax[i / blocksize] }
    }
}

/// Double quantization of a 4-bit tensor's absmax vector (formats/bnb-quants.md, "Double
/// quantization"): the float32 mean is subtracted and the rest quantized 8-bit blockwise in
/// nested blocks of 256 with the dynamic code.
public struct BnBDoubleQuant: Sendable {
    public static let nestedBlocksize = 256
    /// The offset: torch's float32 mean of the absmax vector.
    public var offset: Float
    /// One code index per absmax.
    public var q: [UInt8]
    /// One float32 absmax per nested block.
    public var nestedAbsmax: [Float]

    public init(offset: Float, q: [UInt8], nestedAbsmax: [Float]) {
        self.offset = offset
        self.q = q
        self.nestedAbsmax = nestedAbsmax
    }

    public init(compressing absmax: UnsafeBufferPointer<Float>) {
        offset = TorchReduction.mean(absmax)
        let n = absmax.count
        var centered = [Float](repeating: 0, count: n)
        for i in 0..<n { centered[i] = absmax[i] - offset }
        var q = [UInt8](repeating: 0, count: n)
        var nested = [Float](repeating: 0, count: (n + 255) / 256)
        centered.withUnsafeBufferPointer { c in
            q.withUnsafeMutableBufferPointer { qq in
                nested.withUnsafeMutableBufferPointer { nn in
                    BnBBlockwise8.dynamic.quantize(c, blocksize: Self.nestedBlocksize, q: qq, absmax: nn)
                }
            }
        }
        self.q = q
        nestedAbsmax = nested
    }

    /// The absmax values the 4-bit data is dequantized with:
    /// float32(code[q] * nested_absmax[j / 256]) + offset.
    public func expand() -> [Float] {
        let code = BnBDynamicCode.code
        return (0..<q.count).map { j in code[Int(q[j])] * nestedAbsmax[j / Self.nestedBlocksize] + offset }
    }
}

/// torch's float32 reductions on the CPU, in torch's order of operations, for the one value that
/// bitsandbytes takes from torch: the mean of the absmax vector (formats/bnb-quants.md, "The
/// offset"). Single-threaded torch with 8-lane float32 vectors: the order torch 2.15 takes on
/// x86-64 (checked against testdata/golden/bnb/mean.json, lengths 1 to 1,000,003).
public enum TorchReduction {
    /// Vector lanes of torch's float32 sum kernel.
    public static let lanes = 8

    /// torch.sum of a contiguous float32 vector (cascade_sum in torch's SumKernel.cpp): fewer
    /// values than a vector holds are summed as scalars by rowSum; otherwise the whole vectors
    /// are summed by rowSum lane-wise, the leftover values added one by one to 0, then the lanes
    /// added in order.
    public static func sum(_ x: UnsafeBufferPointer<Float>, lanes: Int = lanes) -> Float {
        let n = x.count
        if n < lanes { return rowSum(x, width: 1, count: n)[0] }
        let vecs = n / lanes
        let v = rowSum(x, width: lanes, count: vecs)
        var total: Float = 0
        for k in (vecs * lanes)..<n { total += x[k] }
        for l in 0..<lanes { total += v[l] }
        return total
    }

    /// torch's row_sum over `count` elements of `width` lanes each (elements are consecutive
    /// groups of `width` values): the elements are read as rows of 4 (4 interleaved
    /// accumulators, each a cascade of 4 levels, multi_row_sum); the elements after the last
    /// whole row are added to accumulator 0, then accumulators 1, 2, 3 are added to it.
    static func rowSum(_ x: UnsafeBufferPointer<Float>, width: Int, count: Int) -> [Float] {
        let ilp = 4, levels = 4
        let rows = count / ilp
        let rowWidth = ilp * width
        var acc = [[Float]](repeating: [Float](repeating: 0, count: rowWidth), count: levels)
        let levelPower = Swift.max(4, ceilLog2(rows) / levels)
        let levelStep = 1 << levelPower
        let levelMask = levelStep - 1
        var i = 0
        func addRow(_ r: Int) {
            for k in 0..<rowWidth { acc[0][k] += x[r * rowWidth + k] }
        }
        while i + levelStep <= rows {
            for _ in 0..<levelStep {
                addRow(i)
                i += 1
            }
            for j in 1..<levels {
                for k in 0..<rowWidth {
                    acc[j][k] += acc[j - 1][k]
                    acc[j - 1][k] = 0
                }
                if i & (levelMask << (j * levelPower)) != 0 { break }
            }
        }
        while i < rows {
            addRow(i)
            i += 1
        }
        for j in 1..<levels {
            for k in 0..<rowWidth { acc[0][k] += acc[j][k] }
        }
        var p0 = Array(acc[0][0..<width])
        for e in (rows * ilp)..<count {
            for l in 0..<width { p0[l] += x[e * width + l] }
        }
        for c in 1..<ilp {
            for l in 0..<width { p0[l] += acc[0][c * width + l] }
        }
        return p0
    }

    /// torch.mean: the sum divided by the count, in float32.
    public static func mean(_ x: UnsafeBufferPointer<Float>, lanes: Int = lanes) -> Float {
        sum(x, lanes: lanes) / Float(x.count)
    }

    /// c10's CeilLog2: 1 for x <= 2, else the bit length of x - 1.
    static func ceilLog2(_ x: Int) -> Int {
        if x <= 2 { return 1 }
        return Int.bitWidth - (x - 1).leadingZeroBitCount
    }
}

/// LLM.int8 row-wise quantization as bitsandbytes' Linear8bitLt stores a weight
/// (formats/bnb-quants.md, "LLM.int8"): the weight is first rounded to float16; per row,
/// SCB = max|w| (float32) and CB = round-half-even(w * (float32(1 / SCB) * 127)).
public enum LLMInt8 {
    /// Quantizes one row of float16 values (given as float32, already rounded to float16).
    /// Returns SCB. A zero row gives zeros.
    public static func quantizeRow(_ w: UnsafeBufferPointer<Float>, into cb: UnsafeMutableBufferPointer<Int8>) -> Float {
        var scb: Float = 0
        for v in w { scb = Swift.max(scb, abs(v)) }
        if scb == 0 {
            for i in 0..<w.count { cb[i] = 0 }
            return 0
        }
        let scale = (1 / scb) * 127
        for i in 0..<w.count {
            cb[i] = Int8((w[i] * scale).rounded(.toNearestOrEven))
        }
        return scb
    }

    /// The constant bitsandbytes multiplies by after q * SCB (7.874015718698502e-3, 1/127),
    /// rounded to float32.
    public static let inverse127 = Float(7.874015718698502e-3)

    /// y = float32(q * SCB) * float32(1/127), as int8_vectorwise_dequant computes it.
    public static func dequantizeRow(_ cb: UnsafeBufferPointer<Int8>, scb: Float, into y: UnsafeMutableBufferPointer<Float>) {
        for i in 0..<cb.count { y[i] = Float(cb[i]) * scb * inverse127 }
    }
}
