import Dispatch
import FTQCore
import FTQKernels

/// One tensor of a GGUF output: a model tensor (renamed, and row-permuted for llama.cpp's q
/// and k), a bitsandbytes weight dequantized on the fly, or one ftq computes (Llama 3's RoPE
/// factors).
struct GGUFEntry {
    /// The model tensor's index (for a bitsandbytes weight, its packed or int8 tensor's); nil
    /// for a computed tensor.
    var source: Int?
    var name: String
    var shape: [Int]
    /// Heads of a q or k projection whose rows are written in llama.cpp's order.
    var heads: Int? = nil
    /// A computed tensor's float32 values.
    var values: [Float]? = nil
    /// A bitsandbytes weight (4-bit or int8, with its companion tensors), decoded as
    /// `ftq dequantize` decodes it.
    var bnb: BnBDequantizer.Item? = nil
    /// What a bitsandbytes weight stands for: its Hugging Face name, float dtype and shape
    /// (nil for every other entry: the model tensor `source` is what it stands for).
    var logical: TensorEntry? = nil
}

extension Converter {
    /// The tensors of a GGUF output: the model's, unchanged, or for a Llama-family checkpoint
    /// llama.cpp's (formats/llama-gguf.md, "Tensors"; a bitsandbytes checkpoint's quantized
    /// weights become one float tensor each, "bitsandbytes inputs").
    func ggufEntries() throws -> [GGUFEntry] {
        guard let llama = options.llama else {
            let entries = model.tensors.enumerated().map { GGUFEntry(source: $0.offset, name: $0.element.name, shape: $0.element.shape) }
            noteUnmatchedOverrides(entries)
            return entries
        }
        var entries: [GGUFEntry] = []
        if let freqs = llama.ropeFreqs() {
            entries.append(GGUFEntry(source: nil, name: "rope_freqs.weight", shape: [freqs.count], values: freqs))
        }
        for var e in try llamaSourceEntries() {
            let t = e.logical ?? model.tensors[e.source!]
            if LlamaTensorNames.isIgnored(t.name) { continue }
            let file = model.file(of: model.tensors[e.source!]).path
            guard let name = LlamaTensorNames.ggufTensor(t.name) else {
                throw FTQError.invalid("convert.llama-tensor", file: file,
                    "tensor \"\(t.name)\" has no llama.cpp name (ftq maps model.embed_tokens, model.layers.N.{input_layernorm, self_attn.{q,k,v,o}_proj, post_attention_layernorm, mlp.{gate,up,down}_proj}, model.norm and lm_head)")
            }
            guard t.type.plainDType?.isConvertibleFloat == true else {
                throw FTQError.invalid("convert.llama-dtype", file: file,
                    "tensor \"\(t.name)\" is \(t.type.name); ftq writes llama.cpp GGUF from F32, F16 and BF16 checkpoints and from bitsandbytes NF4, FP4 and int8 ones")
            }
            e.name = name
            if let h = llama.permutedHeads(name) {
                guard t.shape.count >= 1, t.shape.count <= 2, t.shape[0] % (2 * h) == 0 else {
                    throw FTQError.invalid("convert.llama-heads", file: file,
                        "tensor \"\(t.name)\" \(t.shape): its rows do not split into \(h) heads of an even size, so they cannot take llama.cpp's RoPE order")
                }
                e.heads = h
            }
            entries.append(e)
        }
        noteUnmatchedOverrides(entries)
        return entries
    }

    /// The checkpoint's tensors in source order, named as in the checkpoint: each model tensor,
    /// or for a bitsandbytes checkpoint each quantized weight as one float tensor (its
    /// companions consumed) and every other tensor as it is.
    func llamaSourceEntries() throws -> [GGUFEntry] {
        guard model.format == .safetensors, BnBDequantizer.detect(model) else {
            return model.tensors.enumerated().map { GGUFEntry(source: $0.offset, name: $0.element.name, shape: $0.element.shape) }
        }
        let bnb = BnBDequantizer(model: model, options: ConvertOptions())
        return try bnb.outputs(defaultInt8: try bnb.configDType()).map { o in
            let weight: Int
            switch o.item {
            case let .copy(k):
                return GGUFEntry(source: k, name: o.name, shape: o.shape)
            case let .fourBit(f): weight = f.weight
            case let .int8(w): weight = w.weight
            }
            let w = model.tensors[weight]
            let count = o.shape.reduce(1, *)
            let logical = TensorEntry(name: o.name, type: .safetensors(o.dtype), shape: o.shape, fileIndex: w.fileIndex,
                                      offset: w.offset, nbytes: count * o.dtype.bits / 8, elementCount: count)
            return GGUFEntry(source: weight, name: o.name, shape: o.shape, bnb: o.item, logical: logical)
        }
    }

    /// Says which `--tensor-type` patterns match no 2-D tensor of the output (a likely typo).
    func noteUnmatchedOverrides(_ entries: [GGUFEntry]) {
        guard let overrides = options.typeOverrides else { return }
        for r in overrides.unmatchedRules(entries.filter { $0.shape.count == 2 }.map(\.name)) {
            options.notice?("--tensor-type \(r.pattern)=\(r.target.name) matches no 2-D tensor")
        }
    }

    /// The type a tensor of a GGUF output is given by --type and the type overrides
    /// (formats/llama-gguf.md, "Type overrides"): an override for a 2-D floating-point or
    /// quantized weight first, else --type's; nil leaves the tensor to the usual rules.
    /// A ggml type takes the per-tensor fallbacks of `quantizePlan`.
    func ggufPlan(_ e: GGUFEntry, _ t: TensorEntry) throws -> QuantizePlan? {
        if t.shape.count == 2, let target = options.typeOverrides?.target(for: e.name) {
            switch target {
            case let .quantized(q):
                if let plan = try quantizePlan(t, q) { return plan }
            case let .plain(d):
                var decodable = false
                if case let .ggml(g) = t.type, t.type.plainDType == nil { decodable = GGMLDequantizer.kernel(for: g) != nil }
                if t.type.plainDType?.isConvertibleFloat == true || decodable { return .plain(d) }
            }
        }
        guard let q = options.quantize else { return nil }
        return try quantizePlan(t, q)
    }

    /// `general.file_type` of a Llama GGUF: the --type's (the base type, whatever the
    /// overrides, as llama-quantize records it), or that of the 2-D tensors when they share
    /// one of F32, F16, BF16 (nil when mixed).
    func llamaFileType(specs: [(name: String, type: GGMLType, shape: [Int])]) -> UInt32? {
        if let q = options.quantize { return q.fileType }
        func plainFileType(_ name: String) -> UInt32? {
            switch name {
            case "F32": return 0
            case "F16": return 1
            case "BF16": return 32
            default: return nil
            }
        }
        if let d = options.dtype { return plainFileType(d.rawValue) }
        let types = Set(specs.filter { $0.shape.count == 2 }.map { $0.type.name })
        guard types.count == 1 else { return nil }
        return plainFileType(types.first!)
    }

    /// A computed or row-permuted tensor's bytes: read whole (a q or k projection, at most a
    /// hidden-size square), in llama.cpp's row order, converted to `plain` or quantized.
    func entryBytes(_ e: GGUFEntry, plain: DType?, quantized: GGMLQuantizeType?) throws -> [UInt8] {
        var x: [Float]
        if let values = e.values {
            x = values
        } else if let item = e.bnb {
            x = try dequantizedValues(item)
        } else {
            let t = model.tensors[e.source!]
            guard let src = t.type.plainDType else {
                throw FTQError.invalid("convert.llama-dtype", file: model.file(of: t).path, "tensor \"\(t.name)\" is \(t.type.name), not a float type")
            }
            let raw = try model.read(t)
            x = [Float](repeating: 0, count: t.elementCount)
            raw.withUnsafeBytes { r in x.withUnsafeMutableBytes { DTypeConversion.convert(from: src, to: .F32, count: t.elementCount, src: r, dst: $0) } }
        }
        if let h = e.heads {
            let rows = e.shape[0]
            x = LlamaTensorNames.permuteToGGUF(x, rows: rows, cols: rows == 0 ? 0 : x.count / rows, heads: h)
        }
        if let q = quantized {
            var out = [UInt8](repeating: 0, count: x.count / q.blockElements * q.blockBytes)
            x.withUnsafeBufferPointer { xp in
                out.withUnsafeMutableBytes { op in
                    let job = BlockJob(type: q, x: xp, out: op, parts: min(max(1, options.threads), max(1, xp.count / (64 * 1024))))
                    if job.parts == 1 { job.run(0) } else { DispatchQueue.concurrentPerform(iterations: job.parts) { job.run($0) } }
                }
            }
            return out
        }
        let d = plain ?? .F32
        var out = [UInt8](repeating: 0, count: x.count * d.bits / 8)
        x.withUnsafeBytes { r in out.withUnsafeMutableBytes { DTypeConversion.convert(from: .F32, to: d, count: x.count, src: r, dst: $0) } }
        return out
    }

    /// A bitsandbytes weight decoded whole to float32, exactly as `ftq dequantize` decodes it.
    func dequantizedValues(_ item: BnBDequantizer.Item) throws -> [Float] {
        var x: [Float] = []
        try decodeBnB(item, as: .F32, buffers: ChunkBuffers()) { b in x.append(contentsOf: b.bindMemory(to: Float.self)) }
        return x
    }

    /// Streams a bitsandbytes weight decoded to `dtype`, a slice at a time.
    func decodeBnB(_ item: BnBDequantizer.Item, as dtype: DType, buffers: ChunkBuffers,
                   _ emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        let bnb = BnBDequantizer(model: model, options: ConvertOptions())
        switch item {
        case let .fourBit(f): try bnb.dequantize4(f, as: dtype, buffers: buffers, emit: emit)
        case let .int8(w): try bnb.dequantizeInt8(w, as: dtype, buffers: buffers, emit: emit)
        case let .copy(k): try copyConverted(model.tensors[k], as: dtype, to: emit, buffers: buffers)
        }
    }

    /// Writes a bitsandbytes weight (not row-permuted) as `plain` or quantized to `quantized`,
    /// streaming: decoded a slice at a time (at most 1 MiB of float32, as `ftq dequantize`
    /// decodes it), then converted, or gathered into whole blocks and quantized.
    func writeDequantized(_ e: GGUFEntry, plain: DType?, quantized: GGMLQuantizeType?, out: OutputFile, progress: Progress,
                          buffers: ChunkBuffers, hashes: HashPipeline?) throws {
        hashes?.beginTensor()
        defer { hashes?.endTensor() }
        func write(_ b: UnsafeRawBufferPointer) throws {
            try out.write(b)
            hashes?.feed(b, tensor: true)
            progress.advance(b.count)
        }
        guard let item = e.bnb else { return }
        guard let q = quantized else { return try decodeBnB(item, as: plain ?? .F32, buffers: buffers, write) }
        // Float32 slices gathered into whole blocks of q, quantized into buffers.converted
        // (which decoding to float32 leaves unused).
        let capacity = max(q.blockElements, (1 << 18) / q.blockElements * q.blockElements)
        let acc = UnsafeMutableBufferPointer<Float>.allocate(capacity: capacity)
        defer { acc.deallocate() }
        var filled = 0
        func flush() throws {
            guard filled > 0 else { return }
            let bytes = filled / q.blockElements * q.blockBytes
            let job = BlockJob(type: q, x: UnsafeBufferPointer(rebasing: acc[0..<filled]),
                               out: UnsafeMutableRawBufferPointer(rebasing: buffers.converted[0..<bytes]),
                               parts: min(max(1, options.threads), max(1, filled / (64 * 1024))))
            if job.parts == 1 { job.run(0) } else { DispatchQueue.concurrentPerform(iterations: job.parts) { job.run($0) } }
            try write(UnsafeRawBufferPointer(rebasing: buffers.converted[0..<bytes]))
            filled = 0
        }
        try decodeBnB(item, as: .F32, buffers: buffers) { b in
            let x = b.bindMemory(to: Float.self)
            var at = 0
            while at < x.count {
                let n = min(x.count - at, capacity - filled)
                (acc.baseAddress! + filled).update(from: x.baseAddress! + at, count: n)
                filled += n
                at += n
                if filled == capacity { try flush() }
            }
        }
        guard filled % q.blockElements == 0 else {
            throw FTQError.invalid("internal.size", file: out.finalPath, "tensor \"\(e.name)\": \(filled) values left over a whole block of \(q.rawValue)")
        }
        try flush()
    }
}
