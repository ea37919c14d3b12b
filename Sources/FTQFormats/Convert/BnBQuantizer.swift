#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import FTQCore
import FTQKernels

/// `ftq quantize --nf4 | --fp4 | --int8`: the bitsandbytes layout that transformers saves and
/// loads (formats/bnb-quants.md, "Safetensors layout"; formats/cli.md, "quantize").
public struct BnBOptions: Sendable {
    public enum Mode: Sendable, Equatable {
        case fourBit(BnB4BitType)
        case int8
    }

    public var mode: Mode
    /// 4-bit block size (32..4096, a power of two).
    public var blocksize = 64
    /// Double quantization of the 4-bit absmax (on by default, as for --nf4 and --fp4).
    public var doubleQuant = true
    /// torch name of `bnb_4bit_compute_dtype` in config.json.
    public var computeDType = "bfloat16"
    /// Extra name patterns (regular expressions, searched anywhere in the name) of weights to keep.
    public var skip: [String] = []
    /// Threads the 4-bit kernel may use (the output does not depend on it).
    public var threads = 1

    public init(mode: Mode) { self.mode = mode }

    /// The name of the quantized type in messages: NF4, FP4, INT8.
    public var typeName: String {
        switch mode {
        case let .fourBit(t): return t.rawValue.uppercased()
        case .int8: return "INT8"
        }
    }
}

/// What happens to one source tensor.
public enum BnBTensorPlan: Sendable, Equatable {
    /// Written unchanged (its dtype kept; a ggml-quantized tensor is decoded to F32).
    case keep(reason: String)
    /// Quantized to the chosen type.
    case quantize
}

/// The layer names transformers never converts to bitsandbytes layers: embeddings and the output
/// head (nn.Embedding and the tied or last module), under Hugging Face and GGUF naming.
let bnbKeptComponents: Set<String> = [
    "embed_tokens", "wte", "wpe", "word_embeddings", "position_embeddings", "token_type_embeddings",
    "tok_embeddings", "embed_positions", "embeddings", "lm_head", "token_embd", "shared", "embed_in", "embed_out",
]

/// Model types whose linear layers are GPT-2 style Conv1D (weights stored transposed), which
/// transformers transposes before quantizing: not supported yet.
let bnbConv1DModelTypes: Set<String> = ["gpt2", "openai-gpt", "imagegpt", "decision_transformer"]

/// The bitsandbytes writer: plans, then writes a safetensors file or a Hugging Face directory.
public struct BnBQuantizer {
    public let model: Model
    public let options: ConvertOptions
    public let bnb: BnBOptions
    let skipPatterns: [Regex<AnyRegexOutput>]
    /// Cached statistics of quantized tensors are kept while they total at most this many bytes;
    /// beyond it they are recomputed from the input when needed (another read).
    public var cacheBudget = 64 << 20
    /// Packed 4-bit data kept from the statistics pass, so that the tensors it covers are read
    /// once: at most the largest quantized tensor's size and at most this (formats/cli.md).
    public var packedCacheLimit = 256 << 20
    /// Receives one line per tensor (`[ i/ N] name [shape] BF16 -> NF4  12.0 MiB -> 3.1 MiB`).
    public var tensorLine: (@Sendable (String) -> Void)? = nil
    /// When set, the error of every quantized tensor is measured while it is written.
    public var report: QuantizationReport? = nil

    public init(model: Model, options: ConvertOptions, bnb: BnBOptions) throws {
        self.model = model
        self.options = options
        self.bnb = bnb
        if case .fourBit = bnb.mode, !BnB4BitType.blockSizes.contains(bnb.blocksize) {
            throw FTQError.usage("usage.blocksize", "--blocksize must be one of 32, 64, 128, 256, 512, 1024, 2048, 4096 (got \(bnb.blocksize))")
        }
        skipPatterns = try bnb.skip.map { p in
            do { return try Regex(p) } catch {
                throw FTQError.usage("usage.skip", "--skip \(p): not a valid regular expression")
            }
        }
    }

    /// The plan for every source tensor, in source order.
    public func plan() -> [BnBTensorPlan] {
        model.tensors.map(plan)
    }

    func plan(_ t: TensorEntry) -> BnBTensorPlan {
        let floatSource = t.type.plainDType?.isConvertibleFloat ?? false
        var decodable = false
        if case let .ggml(g) = t.type, t.type.plainDType == nil { decodable = GGMLDequantizer.kernel(for: g) != nil }
        guard floatSource || decodable else { return .keep(reason: "not floating point") }
        guard t.shape.count == 2 else { return .keep(reason: t.shape.count < 2 ? "1-D" : "not 2-D") }
        guard t.name.hasByteSuffix(".weight") else { return .keep(reason: "not a weight") }
        let parts = t.name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        if parts.contains(where: bnbKeptComponents.contains) { return .keep(reason: "embedding or output head") }
        if model.format == .gguf && t.name == "output.weight" { return .keep(reason: "output head") }
        for (p, r) in zip(bnb.skip, skipPatterns) where (try? r.firstMatch(in: t.name)) != nil {
            return .keep(reason: "--skip \(p)")
        }
        if t.elementCount == 0 { return .keep(reason: "empty") }
        return .quantize
    }

    /// The quant_state `dtype` of a source tensor: its torch dtype name (float32 for F64 and
    /// ggml-quantized sources, which are decoded to float32).
    static func torchDType(_ t: TensorEntry) -> String {
        switch t.type.plainDType {
        case .BF16?: return "bfloat16"
        case .F16?: return "float16"
        default: return "float32"
        }
    }

    // MARK: output tensors

    /// Where an output tensor's bytes come from.
    enum Part {
        case copy(Int)
        case packed(Int)
        case absmaxF32(Int)
        case absmaxU8(Int)
        case nestedAbsmax(Int)
        case int8Weight(Int)
        case scb(Int)
        case bytes([UInt8])
    }

    struct OutputTensor {
        var name: String
        var dtype: DType
        var shape: [Int]
        var part: Part
        /// The source tensor this output belongs to (its line is printed after its main part).
        var source: Int
        var main: Bool
    }

    /// Per-tensor statistics from the first pass.
    final class Stats {
        var fourBit: [Int: BnBDoubleQuant] = [:]
        var absmax: [Int: [Float]] = [:]
        var scb: [Int: [Float]] = [:]
        var offsets: [Int: Float] = [:]
        var cachedBytes = 0
        /// 4-bit tensors quantized during the statistics pass: their packed bytes and absmax.
        var packed: [Int: (bytes: PackedBytes, absmax: [Float])] = [:]
        var packedBytes = 0
    }

    static func littleEndian(_ x: [Float]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(x.count * 4)
        for v in x { withUnsafeBytes(of: v.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
        return out
    }

    /// The quant_state JSON, as bitsandbytes' `pack_dict_to_tensor` writes it (json.dumps).
    func quantStateJSON(_ t: TensorEntry, offset: Float?) -> [UInt8] {
        guard case let .fourBit(type) = bnb.mode else { return [] }
        var s = "{\"quant_type\": \"\(type.rawValue)\", \"blocksize\": \(bnb.blocksize), \"dtype\": \"\(Self.torchDType(t))\", "
        s += "\"shape\": [" + t.shape.map(String.init).joined(separator: ", ") + "]"
        if let offset {
            s += ", \"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": \(Self.pythonRepr(Double(offset)))"
        }
        return Array((s + "}").utf8)
    }

    /// Python's repr of a float64: the shortest round-trip digits, exponent form below 1e-4 and
    /// from 1e16, `.0` on integral values. Swift's description follows the same rules for the
    /// finite values an offset takes.
    static func pythonRepr(_ d: Double) -> String {
        var s = "\(d)"
        if let e = s.firstIndex(of: "e") {
            // Swift writes 1e-05 as "1e-05" like Python; both use at least two exponent digits.
            let mant = s[..<e], exp = s[s.index(after: e)...]
            s = mant + "e" + exp
        }
        return s
    }

    /// The output tensors in source order, with each quantized weight expanded into its parts.
    func outputs(_ plans: [BnBTensorPlan], _ stats: Stats) throws -> [OutputTensor] {
        var out: [OutputTensor] = []
        for (k, t) in model.tensors.enumerated() {
            guard plans[k] == .quantize else {
                let dtype = t.type.plainDType ?? .F32
                out.append(OutputTensor(name: t.name, dtype: dtype, shape: t.shape, part: .copy(k), source: k, main: true))
                continue
            }
            let n = t.elementCount
            switch bnb.mode {
            case let .fourBit(type):
                let p = t.name
                let blocks = (n + bnb.blocksize - 1) / bnb.blocksize
                out.append(OutputTensor(name: p, dtype: .U8, shape: [BnB4BitCodec.packedBytes(n), 1], part: .packed(k), source: k, main: true))
                if bnb.doubleQuant {
                    out.append(OutputTensor(name: p + ".absmax", dtype: .U8, shape: [blocks], part: .absmaxU8(k), source: k, main: false))
                } else {
                    out.append(OutputTensor(name: p + ".absmax", dtype: .F32, shape: [blocks], part: .absmaxF32(k), source: k, main: false))
                }
                out.append(OutputTensor(name: p + ".quant_map", dtype: .F32, shape: [16], part: .bytes(Self.littleEndian(type.code)), source: k, main: false))
                if bnb.doubleQuant {
                    out.append(OutputTensor(name: p + ".nested_absmax", dtype: .F32, shape: [(blocks + 255) / 256], part: .nestedAbsmax(k), source: k, main: false))
                    out.append(OutputTensor(name: p + ".nested_quant_map", dtype: .F32, shape: [256],
                                            part: .bytes(Self.littleEndian(BnBDynamicCode.code)), source: k, main: false))
                }
                let json = quantStateJSON(t, offset: bnb.doubleQuant ? stats.offsets[k]! : nil)
                out.append(OutputTensor(name: p + ".quant_state.bitsandbytes__" + type.rawValue, dtype: .U8, shape: [json.count],
                                        part: .bytes(json), source: k, main: false))
            case .int8:
                let module = String(t.name.dropLast(".weight".count))
                out.append(OutputTensor(name: t.name, dtype: .I8, shape: t.shape, part: .int8Weight(k), source: k, main: true))
                out.append(OutputTensor(name: module + ".SCB", dtype: .F32, shape: [t.shape[0]], part: .scb(k), source: k, main: false))
                out.append(OutputTensor(name: module + ".weight_format", dtype: .U8, shape: [], part: .bytes([0]), source: k, main: false))
            }
        }
        // Names must stay unique: a source tensor named like a part (`x.weight.absmax`) would clash.
        var seen = Set<ExactName>()
        for o in out where !seen.insert(ExactName(o.name)).inserted {
            throw FTQError.invalid("quantize.name-clash", file: model.path,
                "the output would hold two tensors named \"\(o.name)\" (a source tensor has the name of a bitsandbytes part)")
        }
        return out
    }

    // MARK: reading floats

    func forEachGroup(_ t: TensorEntry, group: Int, buffers: ChunkBuffers,
                      _ body: (UnsafeBufferPointer<Float>, _ isEnd: Bool) throws -> Void) throws {
        try Converter(model: model, options: options).forEachFloatGroup(t, group: group, buffers: buffers, body)
    }

    func nonFinite(_ t: TensorEntry) -> FTQError {
        FTQError.invalid("quantize.non-finite", file: model.file(of: t).path,
            "tensor \"\(t.name)\" holds NaN or infinite values, which \(bnb.typeName) cannot represent")
    }

    /// The 4-bit absmax vector of tensor `k` (formats/bnb-quants.md, "4-bit").
    func absmax4(_ k: Int, buffers: ChunkBuffers) throws -> [Float] {
        let t = model.tensors[k]
        let bs = bnb.blocksize
        var out = [Float]()
        out.reserveCapacity((t.elementCount + bs - 1) / bs)
        guard case let .fourBit(type) = bnb.mode else { return [] }
        let codec = BnB4BitCodec(type: type, blocksize: bs)
        var am = [Float](repeating: 0, count: (1 << 18) / bs + 1)
        if let d = t.type.plainDType, d == .BF16 || d == .F16 || d == .F32 {
            // Plain sources: the maxima straight from the stored bits, without widening.
            let size = d.bits / 8
            var done = 0
            try model.forEachChunk(of: t, granule: bs * size, buffer: buffers.read) { chunk in
                let n = chunk.count / size
                done += n
                let isEnd = done == t.elementCount
                let nb = codec.blocks(n)
                if am.count < nb { am = [Float](repeating: 0, count: nb) }
                let finite = am.withUnsafeMutableBufferPointer { a in
                    d == .F32 ? codec.absmax(chunk.bindMemory(to: Float.self), isEnd: isEnd, into: a)
                              : codec.absmax(half: chunk, isBF16: d == .BF16, isEnd: isEnd, into: a)
                }
                if !finite { throw nonFinite(t) }
                out.append(contentsOf: am[0..<nb])
            }
            return out
        }
        try forEachGroup(t, group: bs, buffers: buffers) { x, isEnd in
            let nb = codec.blocks(x.count)
            if am.count < nb { am = [Float](repeating: 0, count: nb) }
            let finite = am.withUnsafeMutableBufferPointer { codec.absmax(x, isEnd: isEnd, into: $0) }
            if !finite { throw nonFinite(t) }
            out.append(contentsOf: am[0..<nb])
        }
        return out
    }

    /// Rounds to float16 and back, refusing values that overflow float16.
    @inline(__always)
    static func toHalf(_ v: Float) -> Float {
        Float(bitPattern: FloatBits.f16ToF32(FloatBits.f32ToF16(v.bitPattern)))
    }

    /// SCB of each row of tensor `k` (after rounding to float16).
    func rowMaxes(_ k: Int, buffers: ChunkBuffers) throws -> [Float] {
        let t = model.tensors[k]
        let cols = t.shape[1]
        var out = [Float]()
        out.reserveCapacity(t.shape[0])
        try forEachGroup(t, group: cols, buffers: buffers) { x, _ in
            var r = 0
            while r < x.count {
                var m: Float = 0, poison: Float = 0
                for i in r..<(r + cols) {
                    let h = Self.toHalf(x[i])
                    m = max(m, abs(h))
                    poison += h * 0
                }
                if poison != 0 || poison.isNaN {
                    throw FTQError.invalid("quantize.non-finite", file: model.file(of: t).path,
                        "tensor \"\(t.name)\" holds NaN, infinite or values beyond float16's range (65504), which LLM.int8 cannot represent")
                }
                out.append(m)
                r += cols
            }
        }
        return out
    }

    /// The statistics pass: every quantized tensor is read once, checked and summarized.
    func gatherStats(_ plans: [BnBTensorPlan], buffers: ChunkBuffers) throws -> Stats {
        let stats = Stats()
        for (k, p) in plans.enumerated() where p == .quantize {
            switch bnb.mode {
            case .fourBit:
                let am: [Float]
                let size = BnB4BitCodec.packedBytes(model.tensors[k].elementCount)
                if report == nil && stats.packedBytes + size <= packedBudget(plans) {
                    // Quantized now, while the tensor is read for its statistics: written from
                    // memory later, so the tensor is read once.
                    let bytes = PackedBytes(capacity: size)
                    am = try pack(k, buffers: buffers, checkFinite: true) { bytes.append($0) }
                    stats.packed[k] = (bytes, am)
                    stats.packedBytes += size
                } else {
                    am = try absmax4(k, buffers: buffers)
                }
                if bnb.doubleQuant {
                    let dq = am.withUnsafeBufferPointer { BnBDoubleQuant(compressing: $0) }
                    stats.offsets[k] = dq.offset
                    let size = dq.q.count + dq.nestedAbsmax.count * 4
                    if stats.cachedBytes + size <= cacheBudget {
                        stats.fourBit[k] = dq
                        stats.cachedBytes += size
                    }
                } else if stats.cachedBytes + am.count * 4 <= cacheBudget {
                    stats.absmax[k] = am
                    stats.cachedBytes += am.count * 4
                }
            case .int8:
                stats.scb[k] = try rowMaxes(k, buffers: buffers)
            }
        }
        return stats
    }

    /// Bytes of packed 4-bit data the statistics pass may keep: the largest quantized tensor's
    /// size in the input, at most `packedCacheLimit`, so memory stays within one tensor.
    func packedBudget(_ plans: [BnBTensorPlan]) -> Int {
        let largest = zip(model.tensors, plans).filter { $0.1 == .quantize }.map(\.0.nbytes).max() ?? 0
        return min(largest, packedCacheLimit)
    }

    func doubleQuant(_ k: Int, _ stats: Stats, buffers: ChunkBuffers) throws -> BnBDoubleQuant {
        if let d = stats.fourBit[k] { return d }
        let am = try absmax4(k, buffers: buffers)
        return am.withUnsafeBufferPointer { BnBDoubleQuant(compressing: $0) }
    }

    // MARK: writing

    /// Writes the quantized model to `target` (a safetensors file or a directory).
    public func run(to target: OutputTarget) throws -> [WrittenFile] {
        let conv = Converter(model: model, options: options)
        try conv.refuseInputAsOutput(target.path)
        let plans = plan()
        let buffers = ChunkBuffers()
        let stats = try gatherStats(plans, buffers: buffers)
        let outs = try outputs(plans, stats)
        switch target {
        case let .safetensorsFile(path):
            try conv.refuseExistingSidecars(of: path)
            let meta = conv.sourceSafetensorsMetadata() ?? [("format", "pt")]
            return try conv.commitWithSidecars(try write(outs, indices: Array(outs.indices), plans: plans, stats: stats, metadata: meta,
                                                         to: path, name: nil, progress: nil, buffers: buffers))
        case let .hfDirectory(dir, maxShardSize):
            let sizes = try outs.map { o -> Int in
                let n = try o.shape.reduce(1) { try Checked.mul($0, $1, "quantize.size-overflow", "tensor \"\(o.name)\" size") }
                return n * o.dtype.bits / 8
            }
            let extra = try directoryExtras()
            return try conv.writeDirectory(dir, maxShardSize: maxShardSize, names: outs.map(\.name), sizes: sizes,
                                           parameters: model.tensors.reduce(0) { $0 + $1.elementCount }, extraFiles: extra) { idx, staged, name, prog in
                try write(outs, indices: idx, plans: plans, stats: stats, metadata: [("format", "pt")], to: staged, name: name,
                          progress: prog, buffers: buffers)
            }
        case .gguf:
            throw FTQError.usage("usage.conflict", "--\(bnb.typeName.lowercased()) writes safetensors: give -o a NAME.safetensors or a directory")
        }
    }


    /// One line per source tensor: `[ i/ N] name [shape] BF16 -> NF4  12.0 MiB -> 3.1 MiB`.
    /// `offset`: the double-quantization offset once known (the quant state's length depends on
    /// its digits); without it the size is an estimate (--dry-run).
    public func describe(index i: Int, plan p: BnBTensorPlan, offset: Float? = nil) -> String {
        let t = model.tensors[i]
        let width = String(model.tensors.count).count
        let num = String(repeating: " ", count: max(0, width - String(i + 1).count)) + String(i + 1)
        let shape = "[" + t.shape.map(String.init).joined(separator: ", ") + "]"
        let inBytes = t.nbytes
        switch p {
        case let .keep(reason):
            return "[\(num)/\(model.tensors.count)] \(t.name) \(shape) \(t.type.name) kept (\(reason))  \(ByteSize.format(inBytes))"
        case .quantize:
            return "[\(num)/\(model.tensors.count)] \(t.name) \(shape) \(t.type.name) -> \(bnb.typeName)  \(ByteSize.format(inBytes)) -> \(ByteSize.format(quantizedBytes(t, offset: offset)))"
        }
    }

    /// Bytes a quantized tensor takes with all its parts: exact given the double-quantization
    /// offset, else estimated with a placeholder offset (a few bytes of quant state off).
    public func quantizedBytes(_ t: TensorEntry, offset: Float? = nil) -> Int {
        let n = t.elementCount
        switch bnb.mode {
        case .fourBit:
            let blocks = (n + bnb.blocksize - 1) / bnb.blocksize
            var b = BnB4BitCodec.packedBytes(n) + 64
            b += bnb.doubleQuant ? blocks + (blocks + 255) / 256 * 4 + 1024 : blocks * 4
            return b + quantStateJSON(t, offset: bnb.doubleQuant ? (offset ?? 0.0625) : nil).count
        case .int8:
            return n + t.shape[0] * 4 + 1
        }
    }

    /// Writes the outputs `indices` (in safetensors order) to `path`, finished but not renamed.
    func write(_ outs: [OutputTensor], indices: [Int], plans: [BnBTensorPlan], stats: Stats, metadata: [(String, String)],
               to path: String, name: String?, progress: Progress?, buffers: ChunkBuffers) throws -> (OutputFile, WrittenFile) {
        let specs = indices.map { (name: outs[$0].name, dtype: outs[$0].dtype, shape: outs[$0].shape) }
        let conv = Converter(model: model, options: options)
        // Absmax vectors made while packing, for the `.absmax` part that follows.
        var pendingAbsmax: [Int: [Float]] = [:]
        return try conv.streamSafetensors(specs, metadata: metadata, to: path, name: name, progress: progress, label: "quantize",
                                          produce: { i, _, emit in
            switch outs[indices[i]].part {
            case let .copy(k):
                try conv.copyData(model.tensors[k], to: emit, buffers: buffers)
            case let .bytes(b):
                try b.withUnsafeBytes(emit)
            case let .packed(k):
                if let cached = stats.packed.removeValue(forKey: k) {
                    try emit(cached.bytes.bytes)
                    pendingAbsmax[k] = cached.absmax
                    return
                }
                // The absmax the output stores (after double quantization), for the report.
                let stored: [Float]? = report != nil && bnb.doubleQuant ? try doubleQuant(k, stats, buffers: buffers).expand() : nil
                pendingAbsmax[k] = try pack(k, buffers: buffers, storedAbsmax: stored, emit: emit)
            case let .absmaxF32(k):
                let am: [Float]
                if let a = pendingAbsmax.removeValue(forKey: k) { am = a } else if let a = stats.absmax[k] { am = a } else { am = try absmax4(k, buffers: buffers) }
                try Self.littleEndian(am).withUnsafeBytes(emit)
            case let .absmaxU8(k):
                let d: BnBDoubleQuant
                if let a = pendingAbsmax.removeValue(forKey: k) {
                    d = stats.fourBit[k] ?? a.withUnsafeBufferPointer { BnBDoubleQuant(compressing: $0) }
                } else {
                    d = try doubleQuant(k, stats, buffers: buffers)
                }
                try d.q.withUnsafeBytes(emit)
            case let .nestedAbsmax(k):
                try Self.littleEndian(try doubleQuant(k, stats, buffers: buffers).nestedAbsmax).withUnsafeBytes(emit)
            case let .int8Weight(k):
                try int8Weight(k, buffers: buffers, emit: emit)
            case let .scb(k):
                try Self.littleEndian(stats.scb[k]!).withUnsafeBytes(emit)
            }
        }, afterTensor: { i in
            let o = outs[indices[i]]
            if o.main { tensorLine?(describe(index: o.source, plan: plans[o.source], offset: stats.offsets[o.source])) }
        })
    }

    /// Quantizes tensor `k` to packed nibbles, streaming; returns its absmax vector. With
    /// `checkFinite`, a tensor holding NaN or infinities is refused (`quantize.non-finite`), as
    /// the statistics pass does: a block's absmax is then not finite (the kernels take the
    /// largest magnitude by bit pattern), and a partial last block is checked value by value.
    func pack(_ k: Int, buffers: ChunkBuffers, storedAbsmax: [Float]? = nil, checkFinite: Bool = false,
              emit: (UnsafeRawBufferPointer) throws -> Void) throws -> [Float] {
        guard case let .fourBit(type) = bnb.mode else { return [] }
        let t = model.tensors[k]
        let codec = BnB4BitCodec(type: type, blocksize: bnb.blocksize)
        var all = [Float]()
        all.reserveCapacity(codec.blocks(t.elementCount))
        let packed = buffers.converted
        let threads = max(1, bnb.threads)
        var errors = ErrorStats()
        if t.type.plainDType == .BF16 && report == nil {
            // BF16 without a report: the kernel widens the stored values itself (the same bytes
            // as quantizing the float32 widening), with no float32 copy.
            var done = 0
            try model.forEachChunk(of: t, granule: bnb.blocksize * 2, buffer: buffers.read) { chunk in
                let x = chunk.bindMemory(to: UInt16.self)
                done += x.count
                let nb = codec.blocks(x.count)
                let bytes = BnB4BitCodec.packedBytes(x.count)
                var am = [Float](repeating: 0, count: nb)
                am.withUnsafeMutableBufferPointer { a in
                    let job = PackJob(codec: codec, x: .bf16(x), isEnd: done == t.elementCount,
                                      packed: UnsafeMutableRawBufferPointer(rebasing: packed[0..<bytes]), absmax: a,
                                      parts: min(threads, max(1, x.count / (64 * 1024))))
                    if job.parts == 1 { job.run(0) } else { DispatchQueue.concurrentPerform(iterations: job.parts) { job.run($0) } }
                }
                if checkFinite {
                    let tail = x.count - x.count / bnb.blocksize * bnb.blocksize
                    if am.contains(where: { !$0.isFinite }) || x[(x.count - tail)...].contains(where: { $0 & 0x7fff >= 0x7f80 }) {
                        throw nonFinite(t)
                    }
                }
                all.append(contentsOf: am)
                try emit(UnsafeRawBufferPointer(rebasing: packed[0..<bytes]))
            }
            return all
        }
        let decoded = report == nil ? nil : UnsafeMutableBufferPointer<Float>.allocate(capacity: max(bnb.blocksize, 1 << 18))
        defer { decoded?.deallocate() }
        try forEachGroup(t, group: bnb.blocksize, buffers: buffers) { x, isEnd in
            let nb = codec.blocks(x.count)
            let bytes = BnB4BitCodec.packedBytes(x.count)
            var am = [Float](repeating: 0, count: nb)
            am.withUnsafeMutableBufferPointer { a in
                // Split at block boundaries across threads; only the last part may end the tensor.
                let job = PackJob(codec: codec, x: .f32(x), isEnd: isEnd, packed: UnsafeMutableRawBufferPointer(rebasing: packed[0..<bytes]),
                                  absmax: a, parts: min(threads, max(1, x.count / (64 * 1024))))
                if job.parts == 1 { job.run(0) } else { DispatchQueue.concurrentPerform(iterations: job.parts) { job.run($0) } }
            }
            if checkFinite {
                let tail = x.count - x.count / bnb.blocksize * bnb.blocksize
                if am.contains(where: { !$0.isFinite }) || x[(x.count - tail)...].contains(where: { !$0.isFinite }) { throw nonFinite(t) }
            }
            if let y = decoded {
                // What the output decodes to, against the source values.
                let first = all.count
                let ys = UnsafeMutableBufferPointer(rebasing: y[0..<x.count])
                if let stored = storedAbsmax {
                    stored.withUnsafeBufferPointer { sp in
                        codec.dequantize(UnsafeRawBufferPointer(rebasing: packed[0..<bytes]),
                                         absmax: UnsafeBufferPointer(rebasing: sp[first..<(first + nb)]), count: x.count, into: ys)
                    }
                } else {
                    am.withUnsafeBufferPointer { codec.dequantize(UnsafeRawBufferPointer(rebasing: packed[0..<bytes]), absmax: $0, count: x.count, into: ys) }
                }
                errors.add(x, UnsafeBufferPointer(ys))
            }
            all.append(contentsOf: am)
            try emit(UnsafeRawBufferPointer(rebasing: packed[0..<bytes]))
        }
        report?.add(t, type: bnb.typeName, stats: errors)
        return all
    }

    /// Quantizes tensor `k` row by row to int8, streaming.
    func int8Weight(_ k: Int, buffers: ChunkBuffers, emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        let t = model.tensors[k]
        let cols = t.shape[1]
        let half = UnsafeMutableBufferPointer<Float>.allocate(capacity: cols)
        defer { half.deallocate() }
        let cb = UnsafeMutableBufferPointer<Int8>.allocate(capacity: max(cols, 1 << 18))
        defer { cb.deallocate() }
        var errors = ErrorStats()
        try forEachGroup(t, group: cols, buffers: buffers) { x, _ in
            var r = 0
            while r < x.count {
                for i in 0..<cols { half[i] = Self.toHalf(x[r + i]) }
                let scb = LLMInt8.quantizeRow(UnsafeBufferPointer(half), into: UnsafeMutableBufferPointer(rebasing: cb[0..<cols]))
                if report != nil {
                    // What the output decodes to (into `half`, no longer needed), against the source.
                    LLMInt8.dequantizeRow(UnsafeBufferPointer(rebasing: cb[0..<cols]), scb: scb, into: half)
                    errors.add(UnsafeBufferPointer(rebasing: x[r..<(r + cols)]), UnsafeBufferPointer(half))
                }
                try emit(UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: cb[0..<cols])))
                r += cols
            }
        }
        report?.add(t, type: bnb.typeName, stats: errors)
    }

    // MARK: directory extras

    /// The input directory's companion files, config.json with the quantization_config.
    func directoryExtras() throws -> [(name: String, bytes: [UInt8])] {
        try CompanionFiles.read(model) { try quantizedConfig($0, path: $1) }
    }

    /// Paths of the companion files (inputs of the output's manifest).
    public func companionInputs() throws -> [String] { try CompanionFiles.paths(model) }

    /// config.json with transformers' `quantization_config` for this quantization, inserted
    /// where sorted keys put it (transformers writes sorted keys) or replacing an existing one.
    public func quantizedConfig(_ bytes: [UInt8], path: String) throws -> [UInt8] {
        var members = try CompanionFiles.parseConfig(bytes, path: path)
        if case let .string(mt)? = members.first(where: { $0.0 == "model_type" })?.1, bnbConv1DModelTypes.contains(mt) {
            throw FTQError.invalid("quantize.conv1d", file: path,
                "model_type \"\(mt)\" stores its linear layers as transposed Conv1D weights; ftq cannot write them in the bitsandbytes layout yet")
        }
        members.removeAll { $0.0 == "quantization_config" }
        let q = quantizationConfig()
        let sorted = zip(members, members.dropFirst()).allSatisfy { $0.0.0.utf8.lexicographicallyPrecedes($0.1.0.utf8) }
        if sorted, let at = members.firstIndex(where: { "quantization_config".utf8.lexicographicallyPrecedes($0.0.utf8) }) {
            members.insert(("quantization_config", q), at: at)
        } else {
            members.append(("quantization_config", q))
        }
        return CompanionFiles.serializeConfig(members)
    }

    /// transformers' BitsAndBytesConfig.to_dict() for this quantization.
    public func quantizationConfig() -> JSONValue {
        var fourBit = false, type = "fp4", dq = false, compute = "float32"
        if case let .fourBit(t) = bnb.mode {
            fourBit = true
            type = t.rawValue
            dq = bnb.doubleQuant
            compute = bnb.computeDType
        }
        // transformers converts every linear layer but those listed here; when --skip kept some,
        // the list must name every kept 2-D weight (the output head too, which transformers
        // skips by itself only when the list is empty).
        let plans = model.tensors.map { ($0, plan($0)) }
        let anySkipped = plans.contains { if case let .keep(r) = $0.1 { return r.hasBytePrefix("--skip") }; return false }
        let skipped: [JSONValue] = !anySkipped ? [] : plans.compactMap { t, p in
            guard case .keep = p, t.name.hasByteSuffix(".weight"), t.shape.count == 2 else { return nil }
            return .string(String(t.name.dropLast(".weight".count)))
        }
        return .object([
            ("_load_in_4bit", .bool(fourBit)),
            ("_load_in_8bit", .bool(!fourBit)),
            ("bnb_4bit_compute_dtype", .string(compute)),
            ("bnb_4bit_quant_storage", .string("uint8")),
            ("bnb_4bit_quant_type", .string(type)),
            ("bnb_4bit_use_double_quant", .bool(dq)),
            ("llm_int8_enable_fp32_cpu_offload", .bool(false)),
            ("llm_int8_has_fp16_weight", .bool(false)),
            ("llm_int8_skip_modules", skipped.isEmpty ? .null : .array(skipped)),
            ("llm_int8_threshold", .number("6.0")),
            ("load_in_4bit", .bool(fourBit)),
            ("load_in_8bit", .bool(!fourBit)),
            ("quant_method", .string("bitsandbytes")),
        ])
    }
}

/// The files of a Hugging Face directory that are not model weights (config, tokenizer,
/// generation config, ...): copied by commands that write a directory from a directory.
public enum CompanionFiles {
    static let weightSuffixes = [".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".gguf", ".onnx", ".ftqz",
                                 ".safetensors.index.json", ".bin.index.json", ".ftq-tmp", ".manifest.json", ".sha256"]
    /// Companion files above this size are refused: they are not configuration.
    public static let maxBytes = Limits.companionBytes

    /// Names of the companion files of a directory input, sorted: regular files that are not
    /// model weights (any format), ftq's sidecars or hidden files. Empty for a file input.
    public static func names(_ model: Model) throws -> [String] {
        guard case .directory = PathKind.of(model.path) else { return [] }
        return try listDirectory(model.path).sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }).filter { name in
            if name.hasBytePrefix(".") || name == "ftq-manifest.json" || name == "SHA256SUMS" { return false }
            if weightSuffixes.contains(where: { name.hasByteSuffix($0) }) { return false }
            return PathKind.of(joinPath(model.path, name)) == .regularFile
        }
    }

    public static func paths(_ model: Model) throws -> [String] {
        try names(model).map { joinPath(model.path, $0) }
    }

    /// The companion files' contents, config.json passed through `config` (its bytes and path).
    public static func read(_ model: Model, config: ([UInt8], String) throws -> [UInt8]) throws -> [(name: String, bytes: [UInt8])] {
        var out: [(String, [UInt8])] = []
        for name in try names(model) {
            let path = joinPath(model.path, name)
            let f = try InputFile(path)
            guard f.size <= maxBytes else {
                throw FTQError.invalid("input.companion-too-large", file: path,
                    "\(name) is larger than 64 MiB; ftq copies only small companion files (config, tokenizer)")
            }
            var bytes = [UInt8](repeating: 0, count: f.size)
            try bytes.withUnsafeMutableBytes { try f.read(into: $0, at: 0) }
            if name == "config.json" { bytes = try config(bytes, path) }
            out.append((name, bytes))
        }
        return out
    }

    /// config.json as a JSON object's members (path names it in errors).
    public static func parseConfig(_ bytes: [UInt8], path: String) throws -> [(String, JSONValue)] {
        let v: JSONValue
        do { v = try StrictJSON.parse(bytes) } catch let e as FTQError { throw e.inFile(path) }
        guard case let .object(members) = v else {
            throw FTQError.invalid("input.config", file: path, "config.json is not a JSON object")
        }
        return members
    }

    /// config.json text as transformers writes it: 2-space indentation, ASCII only, newline.
    public static func serializeConfig(_ members: [(String, JSONValue)]) -> [UInt8] {
        Array((JSONText.serialize(.object(members), indent: 2, asciiOnly: true) + "\n").utf8)
    }
}

/// Packed 4-bit data kept in memory between the statistics pass and writing.
final class PackedBytes {
    let buffer: UnsafeMutableRawBufferPointer
    var count = 0
    init(capacity: Int) { buffer = LargeBuffer.allocate(byteCount: capacity) }
    deinit { LargeBuffer.deallocate(buffer) }
    func append(_ b: UnsafeRawBufferPointer) {
        guard let src = b.baseAddress, b.count > 0 else { return }
        precondition(count + b.count <= buffer.count)
        (buffer.baseAddress! + count).copyMemory(from: src, byteCount: b.count)
        count += b.count
    }
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: buffer[0..<count]) }
}

/// One slice of a 4-bit tensor split at block boundaries into `parts` pieces, each quantized on
/// its own thread into its own bytes of `packed` and `absmax` (disjoint ranges).
struct PackJob: @unchecked Sendable {
    /// The slice's values: float32, or BF16 bit patterns.
    enum Values {
        case f32(UnsafeBufferPointer<Float>)
        case bf16(UnsafeBufferPointer<UInt16>)
        var count: Int {
            switch self {
            case let .f32(x): return x.count
            case let .bf16(x): return x.count
            }
        }
    }

    let codec: BnB4BitCodec
    let x: Values
    let isEnd: Bool
    let packed: UnsafeMutableRawBufferPointer
    let absmax: UnsafeMutableBufferPointer<Float>
    let parts: Int

    func run(_ p: Int) {
        let nb = codec.blocks(x.count)
        let perPart = (nb + parts - 1) / parts
        let b0 = p * perPart, b1 = min(nb, b0 + perPart)
        guard b0 < b1 else { return }
        let e0 = b0 * codec.blocksize, e1 = min(x.count, b1 * codec.blocksize)
        // Only the part that ends the slice may end the tensor.
        let end = isEnd && e1 == x.count
        let out = UnsafeMutableRawBufferPointer(rebasing: packed[(e0 / 2)...])
        let a = UnsafeMutableBufferPointer(rebasing: absmax[b0..<b1])
        switch x {
        case let .f32(v): codec.quantize(UnsafeBufferPointer(rebasing: v[e0..<e1]), isEnd: end, packed: out, absmax: a)
        case let .bf16(v): codec.quantize(bf16: UnsafeBufferPointer(rebasing: v[e0..<e1]), isEnd: end, packed: out, absmax: a)
        }
    }
}
