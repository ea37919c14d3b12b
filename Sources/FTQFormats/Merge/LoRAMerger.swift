import FTQCore
import FTQKernels

/// `ftq merge BASE ADAPTER`: a LoRA adapter merged into a full-precision base as PEFT's
/// merge_and_unload does on the CPU (formats/lora-merge.md): every adapted weight gets
/// (B @ A) * scaling added in float32, rounded once to its dtype; everything else is copied.
public struct LoRAMerger {
    public let model: Model
    public let adapters: [LoRAAdapter]
    /// Weights of several adapters, combined as PEFT's add_weighted_adapter(combination_type=
    /// "cat") combines them (formats/lora-merge.md, "Several adapters"); nil for one adapter.
    public let weights: [Double]?
    public let options: ConvertOptions
    /// For a 4-bit base: receives, per merged weight, the error of the requantized output
    /// against the ideal float32 merge.
    public var report: QuantizationReport? = nil
    /// For a quantized base: write the merged model in full precision instead of quantizing the
    /// merged weights again.
    public var dequantize = false

    public init(model: Model, adapter: LoRAAdapter, options: ConvertOptions) {
        self.init(model: model, adapters: [adapter], weights: nil, options: options)
    }

    public init(model: Model, adapters: [LoRAAdapter], weights: [Double]?, options: ConvertOptions) {
        precondition(!adapters.isEmpty && (weights == nil ? adapters.count == 1 : weights!.count == adapters.count))
        self.model = model
        self.adapters = adapters
        self.weights = weights
        self.options = options
    }

    var fanInFanOut: Bool { adapters[0].fanInFanOut }

    /// The parts that update one base tensor: (adapter index, module) in adapter order.
    public typealias Update = [(adapter: Int, module: LoRAAdapter.Module)]

    /// Base tensor index -> its updates, every target checked against the base.
    public func plan() throws -> [Int: Update] {
        if adapters.contains(where: { $0.fanInFanOut != fanInFanOut }) {
            throw FTQError.invalid("merge.adapter-config", file: adapters[0].configPath,
                "the adapters disagree on fan_in_fan_out; they cannot be combined")
        }
        var index: [ExactName: Int] = [:]
        for (k, t) in model.tensors.enumerated() { index[ExactName(t.name)] = k }
        var out: [Int: Update] = [:]
        for (j, adapter) in adapters.enumerated() {
            for m in adapter.modules {
                guard let k = index[ExactName(m.name + ".weight")] else {
                    throw FTQError.invalid("merge.missing-target", file: model.path,
                        "the adapter \(adapter.path) targets module \"\(m.name)\", but the base has no tensor \"\(m.name).weight\"")
                }
                let t = model.tensors[k]
                guard let d = t.type.plainDType, d == .F32 || d == .F16 || d == .BF16 else {
                    throw FTQError.invalid("merge.base-dtype", file: model.file(of: t).path,
                        "tensor \"\(t.name)\" is \(t.type.name); ftq merges into F32, F16 and BF16 weights (quantized bases are not supported yet)")
                }
                try checkShape(m, of: t.name, t.shape, file: model.file(of: t).path)
                out[k, default: []].append((j, m))
            }
        }
        return out
    }

    func outDType(_ t: TensorEntry) -> DType {
        let d = t.type.plainDType ?? .F32
        if let want = options.dtype, d.isConvertibleFloat { return want }
        return d
    }

    /// Base tensor index -> (adapter index, the tensor that replaces it): modules_to_save.
    func replacementPlan(_ updates: [Int: Update]) throws -> [Int: (Int, TensorEntry)] {
        // Several weighted adapters: PEFT's combined adapter uses no trained copy (LoRAMerger+Combinations.swift).
        if weights != nil { return [:] }
        var index: [ExactName: Int] = [:]
        for (k, t) in model.tensors.enumerated() { index[ExactName(t.name)] = k }
        var out: [Int: (Int, TensorEntry)] = [:]
        for (j, adapter) in adapters.enumerated() {
            for (name, t) in adapter.replacements {
                guard let k = index[ExactName(name)] else {
                    throw FTQError.invalid("merge.missing-target", file: model.path,
                        "the adapter \(adapter.path) saves module tensor \"\(name)\" (modules_to_save), but the base has no such tensor")
                }
                let bt = model.tensors[k]
                guard bt.shape == t.shape, bt.type.plainDType?.isConvertibleFloat ?? false else {
                    throw FTQError.invalid("merge.shape-mismatch", file: model.file(of: bt).path,
                        "tensor \"\(name)\" is \(bt.type.name) \(bt.shape); the adapter's copy (modules_to_save) is \(t.shape)")
                }
                if updates[k] != nil || out[k] != nil {
                    throw FTQError.invalid("merge.adapter-config", file: adapter.configPath,
                        "tensor \"\(name)\" is both replaced (modules_to_save) and updated, or replaced twice; ftq cannot combine them")
                }
                out[k] = (j, t)
            }
        }
        return out
    }

    public func run(to target: OutputTarget) throws -> [WrittenFile] {
        try checkDoRA()
        try checkWeightedReplacements()
        if model.format == .safetensors && BnBDequantizer.detect(model) {
            return dequantize ? try QuantizedBaseMerge(self).runDequantized(to: target) : try QuantizedBaseMerge(self).run(to: target)
        }
        if model.format != .gguf, let a = adapters.first(where: \.isGGUF) {
            throw FTQError.invalid("merge.adapter", file: a.path, "a GGUF LoRA adapter merges into a GGUF base")
        }
        if adapters.contains(where: \.isGGUF) && adapters.contains(where: { !$0.isGGUF }) {
            throw FTQError.invalid("merge.adapter", file: adapters[0].path, "PEFT and GGUF adapters cannot be mixed")
        }
        if model.format == .gguf {
            guard case let .gguf(path) = target else {
                throw FTQError.usage("usage.conflict", "a GGUF base gives a GGUF: give -o NAME.gguf")
            }
            if options.dtype != nil && !dequantize { throw FTQError.usage("usage.conflict", "--dtype with a GGUF base needs --dequantize") }
            return try GGUFBaseMerge(merger: self).run(to: path)
        }
        let conv = Converter(model: model, options: options)
        try conv.refuseInputAsOutput(target.path)
        for t in model.tensors where t.type.plainDType == nil {
            throw FTQError.invalid("merge.base-dtype", file: model.file(of: t).path,
                "tensor \"\(t.name)\" is \(t.type.name); ftq merges into bases of plain tensors (quantized bases are not supported yet)")
        }
        let merges = try plan()
        let replaced = try replacementPlan(merges)
        let buffers = ChunkBuffers()
        let meta = conv.sourceSafetensorsMetadata() ?? [("format", "pt")]
        switch target {
        case let .safetensorsFile(path):
            try conv.refuseExistingSidecars(of: path)
            return try conv.commitWithSidecars(try write(Array(model.tensors.indices), merges: merges, replaced: replaced, metadata: meta, to: path,
                                                         name: nil, progress: nil, buffers: buffers))
        case let .hfDirectory(dir, maxShardSize):
            let sizes = model.tensors.map { outDType($0).byteCount(elements: $0.elementCount) ?? Int.max }
            let extra = try CompanionFiles.read(model) { bytes, _ in bytes }
            return try conv.writeDirectory(dir, maxShardSize: maxShardSize, names: model.tensors.map(\.name), sizes: sizes,
                                           parameters: model.tensors.reduce(0) { $0 + $1.elementCount }, extraFiles: extra) { idx, staged, name, prog in
                try write(idx, merges: merges, replaced: replaced, metadata: meta, to: staged, name: name, progress: prog, buffers: buffers)
            }
        case .gguf:
            throw FTQError.usage("usage.conflict", "ftq merge writes the base's form: a .safetensors file or a directory")
        }
    }

    func floats(_ t: TensorEntry) throws -> [Float] {
        let raw = try model.read(t)
        let src = adapterOrBaseDType(t)
        var out = [Float](repeating: 0, count: t.elementCount)
        raw.withUnsafeBytes { r in
            out.withUnsafeMutableBytes { DTypeConversion.convert(from: src, to: .F32, count: t.elementCount, src: r, dst: $0) }
        }
        return out
    }

    func adapterOrBaseDType(_ t: TensorEntry) -> DType { t.type.plainDType ?? .F32 }

    /// A tensor of adapter `j` as float32.
    func load(_ j: Int, _ t: TensorEntry) throws -> [Float] {
        try LoRAMerger(model: adapters[j].model, adapter: adapters[j], options: options).floats(t)
    }

    /// lora_A, lora_B (float32), the rank and the float32 scaling that update one tensor. One
    /// adapter: its own. Several: PEFT's "cat" combination, A_j * weight_j * scaling_j stacked
    /// by rows and B_j by columns in adapter order, zero-padded to the combined rank (the sum of
    /// every adapter's largest rank), with the combined scaling rank / rank = 1 (rank / sqrt(rank)
    /// when the first adapter uses rsLoRA).
    func factors(_ update: Update, baseDType: DType) throws -> (a: [Float], b: [Float], rank: Int, scaling: Float, round: (@Sendable (Float) -> Float)?) {
        guard let weights else {
            let m = update[0].module
            return (try load(0, m.a), try load(0, m.b), m.rank, Float(m.scaling), nil)
        }
        let total = adapters.reduce(0) { $0 + $1.maxRank }
        let inF = update[0].module.a.shape[1], outF = update[0].module.b.shape[0]
        // The combined factors are held in memory: refuse sizes beyond the base tensor's order.
        let elements = try Checked.mul(total, inF + outF, "merge.adapter-config", "combined rank \(total)")
        guard total <= LoRAAdapter.rankLimit, elements <= max(1 << 24, 4 * inF * outF) else {
            throw FTQError.invalid("merge.adapter-config", file: adapters[0].configPath,
                "the combined rank \(total) (the sum of the adapters' largest ranks) is too large for \(outF)x\(inF) weights")
        }
        var a = [Float](repeating: 0, count: total * inF)
        var b = [Float](repeating: 0, count: outF * total)
        var row = 0
        for (j, m) in update {
            let aj = try load(j, m.a), bj = try load(j, m.b)
            let wj = Float(weights[j]), sj = Float(m.scaling)
            for k in 0..<m.rank {
                for i in 0..<inF { a[(row + k) * inF + i] = aj[k * inF + i] * wj * sj }
            }
            for o in 0..<outF {
                for k in 0..<m.rank { b[o * total + row + k] = bj[o * m.rank + k] }
            }
            row += m.rank
        }
        let r = Double(total)
        let scaling = adapters[0].useRSLoRA ? r / r.squareRoot() : r / r
        // PEFT creates the combined adapter in the base weight's dtype: its A and B are rounded
        // to it, and so is the delta before it is added.
        guard baseDType != .F32 else { return (a, b, total, Float(scaling), nil) }
        let round: @Sendable (Float) -> Float = { x in
            baseDType == .BF16 ? Float(bitPattern: FloatBits.bf16ToF32(FloatBits.f32ToBF16(x.bitPattern)))
                               : Float(bitPattern: FloatBits.f16ToF32(FloatBits.f32ToF16(x.bitPattern)))
        }
        return (a.map(round), b.map(round), total, Float(scaling), round)
    }

    func write(_ indices: [Int], merges: [Int: Update], replaced: [Int: (Int, TensorEntry)], metadata: [(String, String)], to path: String, name: String?,
               progress: Progress?, buffers: ChunkBuffers) throws -> (OutputFile, WrittenFile) {
        let conv = Converter(model: model, options: options)
        let specs = indices.map { (name: model.tensors[$0].name, dtype: outDType(model.tensors[$0]), shape: model.tensors[$0].shape) }
        let scratch = MergeScratch()
        return try conv.streamSafetensors(specs, metadata: metadata, to: path, name: name, progress: progress, label: "merge") { i, item, emit in
            let k = indices[i]
            let t = model.tensors[k]
            if let update = merges[k] {
                // The whole weight in float32, in a buffer kept from one weight to the next
                // (memory: the largest adapted tensor; no page faults after the first).
                let w = scratch.floats(t.elementCount)
                try readFloats(t, into: w, buffers: buffers)
                let (a, b, rank, scaling, round) = try factors(update, baseDType: t.type.plainDType ?? .F32)
                let magnitude = try update[0].module.magnitude.map { try load(update[0].adapter, $0) }
                if !fanInFanOut && magnitude == nil && options.threads > 1 {
                    // Rows computed by the other threads while this one converts and writes
                    // the rows already done (blocks of about 256 K elements).
                    let cols = t.shape[1]
                    try a.withUnsafeBufferPointer { ap in
                        try b.withUnsafeBufferPointer { bp in
                            try LoRADelta.addStreaming(to: w, rows: t.shape[0], cols: cols, a: ap, b: bp, rank: rank, scaling: scaling,
                                                       roundDelta: round, threads: options.threads, blockRows: max(1, (1 << 18) / max(cols, 1))) { rows in
                                try Self.emit(UnsafeBufferPointer(rebasing: w[(rows.lowerBound * cols)..<(rows.upperBound * cols)]),
                                              as: item.dtype, emit, buffers: buffers)
                            }
                        }
                    }
                } else {
                    a.withUnsafeBufferPointer { ap in
                        b.withUnsafeBufferPointer { bp in
                            LoRADelta.add(to: w, rows: t.shape[0], cols: t.shape[1], a: ap, b: bp, rank: rank,
                                          scaling: scaling, fanInFanOut: fanInFanOut, roundDelta: round, threads: options.threads)
                        }
                    }
                    // DoRA: W + delta, each row scaled to its learned magnitude.
                    magnitude?.withUnsafeBufferPointer { DoRA.scale(w, rows: t.shape[0], cols: t.shape[1], magnitude: $0, fanInFanOut: fanInFanOut) }
                    try Self.emit(UnsafeBufferPointer(w), as: item.dtype, emit, buffers: buffers)
                }
                if let report {
                    // What rounding the merge to the output dtype costs, against its float32 value.
                    var bytes = [UInt8](repeating: 0, count: w.count * item.dtype.bits / 8)
                    var y = [Float](repeating: 0, count: w.count)
                    bytes.withUnsafeMutableBytes { DTypeConversion.convert(from: .F32, to: item.dtype, count: w.count, src: UnsafeRawBufferPointer(w), dst: $0) }
                    bytes.withUnsafeBytes { src in y.withUnsafeMutableBytes { DTypeConversion.convert(from: item.dtype, to: .F32, count: w.count, src: src, dst: $0) } }
                    var e = ErrorStats()
                    y.withUnsafeBufferPointer { e.add(UnsafeBufferPointer(w), $0) }
                    report.add(name: t.name, shape: t.shape, typeA: "F32", typeB: item.dtype.rawValue, stats: e)
                }
            } else if let (j, rep) = replaced[k] {
                // modules_to_save: the adapter's tensor, converted to this tensor's dtype.
                try Converter(model: adapters[j].model, options: options).copyConverted(rep, as: item.dtype, to: emit, buffers: buffers)
            } else {
                try conv.copyConverted(t, as: item.dtype, to: emit, buffers: buffers)
            }
        }
    }

    /// Float32 values written as `dtype` (rounded to nearest even).
    static func emit(_ w: [Float], as dtype: DType, _ emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        var bytes = [UInt8](repeating: 0, count: w.count * dtype.bits / 8)
        w.withUnsafeBytes { src in bytes.withUnsafeMutableBytes { DTypeConversion.convert(from: .F32, to: dtype, count: w.count, src: src, dst: $0) } }
        try bytes.withUnsafeBytes(emit)
    }

    /// The same, a chunk at a time through `buffers.converted` (no allocation per weight).
    static func emit(_ w: UnsafeBufferPointer<Float>, as dtype: DType, _ emit: (UnsafeRawBufferPointer) throws -> Void,
                     buffers: ChunkBuffers) throws {
        if dtype == .F32 { return try emit(UnsafeRawBufferPointer(w)) }
        let step = buffers.converted.count / 4
        var done = 0
        while done < w.count {
            let n = min(step, w.count - done)
            DTypeConversion.convert(from: .F32, to: dtype, count: n, src: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: w[done..<(done + n)])),
                                    dst: buffers.converted)
            try emit(UnsafeRawBufferPointer(rebasing: buffers.converted[0..<(n * dtype.bits / 8)]))
            done += n
        }
    }

    /// Tensor `t` of the base as float32 into `w` (its element count), read a chunk at a time.
    func readFloats(_ t: TensorEntry, into w: UnsafeMutableBufferPointer<Float>, buffers: ChunkBuffers) throws {
        let src = adapterOrBaseDType(t), size = src.bits / 8
        let dst = UnsafeMutableRawBufferPointer(w)
        var done = 0
        try model.forEachChunk(of: t, granule: size, buffer: buffers.read) { chunk in
            let n = chunk.count / size
            DTypeConversion.convert(from: src, to: .F32, count: n, src: chunk, dst: UnsafeMutableRawBufferPointer(rebasing: dst[(done * 4)..<((done + n) * 4)]))
            done += n
        }
        precondition(done == w.count)
    }
}

/// The float32 weight buffer of a merge, grown to the largest adapted tensor and reused.
final class MergeScratch {
    private var buffer = UnsafeMutableRawBufferPointer(start: nil, count: 0)

    func floats(_ count: Int) -> UnsafeMutableBufferPointer<Float> {
        if buffer.count < count * 4 {
            if buffer.baseAddress != nil { LargeBuffer.deallocate(buffer) }
            buffer = LargeBuffer.allocate(byteCount: max(count * 4, 4))
        }
        return UnsafeMutableBufferPointer(start: buffer.baseAddress!.assumingMemoryBound(to: Float.self), count: count)
    }

    deinit { if buffer.baseAddress != nil { LargeBuffer.deallocate(buffer) } }
}

extension LoRAMerger {
    /// True when the base is in a bitsandbytes layout (merged, then quantized again).
    public var baseIsQuantized: Bool { model.format == .safetensors && BnBDequantizer.detect(model) }
}

extension LoRAMerger {
    /// True when some tensor of a GGUF base is quantized (then merging quantizes again).
    public var ggufBaseIsQuantized: Bool {
        model.format == .gguf && model.tensors.contains { $0.type.plainDType == nil }
    }
}

extension LoRAMerger {
    /// A module's weight must be [out, in], or [in, out] with fan_in_fan_out (`merge.shape-mismatch`).
    func checkShape(_ m: LoRAAdapter.Module, of name: String, _ shape: [Int], file: String) throws {
        let outF = m.b.shape[0], inF = m.a.shape[1]
        let want = fanInFanOut ? [inF, outF] : [outF, inF]
        guard shape == want else {
            throw FTQError.invalid("merge.shape-mismatch", file: file,
                "tensor \"\(name)\" is \(shape), but the adapter's module \"\(m.name)\" needs \(want)\(fanInFanOut ? " (fan_in_fan_out)" : "")")
        }
    }
}
