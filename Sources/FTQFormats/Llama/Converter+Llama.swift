import Dispatch
import FTQCore
import FTQKernels

/// One tensor of a GGUF output: a model tensor (renamed, and row-permuted for llama.cpp's q
/// and k) or one ftq computes (Llama 3's RoPE factors).
struct GGUFEntry {
    /// The model tensor's index; nil for a computed tensor.
    var source: Int?
    var name: String
    var shape: [Int]
    /// Heads of a q or k projection whose rows are written in llama.cpp's order.
    var heads: Int? = nil
    /// A computed tensor's float32 values.
    var values: [Float]? = nil
}

extension Converter {
    /// The tensors of a GGUF output: the model's, unchanged, or for a Llama-family checkpoint
    /// llama.cpp's (formats/llama-gguf.md, "Tensors").
    func ggufEntries() throws -> [GGUFEntry] {
        guard let llama = options.llama else {
            return model.tensors.enumerated().map { GGUFEntry(source: $0.offset, name: $0.element.name, shape: $0.element.shape) }
        }
        var entries: [GGUFEntry] = []
        if let freqs = llama.ropeFreqs() {
            entries.append(GGUFEntry(source: nil, name: "rope_freqs.weight", shape: [freqs.count], values: freqs))
        }
        for (k, t) in model.tensors.enumerated() where !LlamaTensorNames.isIgnored(t.name) {
            let file = model.file(of: t).path
            guard let name = LlamaTensorNames.ggufTensor(t.name) else {
                throw FTQError.invalid("convert.llama-tensor", file: file,
                    "tensor \"\(t.name)\" has no llama.cpp name (ftq maps model.embed_tokens, model.layers.N.{input_layernorm, self_attn.{q,k,v,o}_proj, post_attention_layernorm, mlp.{gate,up,down}_proj}, model.norm and lm_head)")
            }
            guard t.type.plainDType?.isConvertibleFloat == true else {
                throw FTQError.invalid("convert.llama-dtype", file: file,
                    "tensor \"\(t.name)\" is \(t.type.name); ftq writes llama.cpp GGUF from F32, F16 and BF16 checkpoints (a bitsandbytes checkpoint can be dequantized first with ftq dequantize)")
            }
            var e = GGUFEntry(source: k, name: name, shape: t.shape)
            if let h = llama.permutedHeads(name) {
                guard t.shape.count >= 1, t.shape.count <= 2, t.shape[0] % (2 * h) == 0 else {
                    throw FTQError.invalid("convert.llama-heads", file: file,
                        "tensor \"\(t.name)\" \(t.shape): its rows do not split into \(h) heads of an even size, so they cannot take llama.cpp's RoPE order")
                }
                e.heads = h
            }
            entries.append(e)
        }
        return entries
    }

    /// `general.file_type` of a Llama GGUF: the --type's, or that of the 2-D tensors when they
    /// share one of F32, F16, BF16 (nil when mixed).
    func llamaFileType(specs: [(name: String, type: GGMLType, shape: [Int])]) -> UInt32? {
        if let q = options.quantize { return q.fileType }
        let types = Set(specs.filter { $0.shape.count == 2 }.map { $0.type.name })
        guard types.count == 1 else { return nil }
        switch types.first! {
        case "F32": return 0
        case "F16": return 1
        case "BF16": return 32
        default: return nil
        }
    }

    /// A computed or row-permuted tensor's bytes: read whole (a q or k projection, at most a
    /// hidden-size square), in llama.cpp's row order, converted to `plain` or quantized.
    func entryBytes(_ e: GGUFEntry, plain: DType?, quantized: GGMLQuantizeType?) throws -> [UInt8] {
        var x: [Float]
        if let values = e.values {
            x = values
        } else {
            let t = model.tensors[e.source!]
            guard let src = t.type.plainDType else {
                throw FTQError.invalid("convert.llama-dtype", file: model.file(of: t).path, "tensor \"\(t.name)\" is \(t.type.name), not a float type")
            }
            let raw = try model.read(t)
            x = [Float](repeating: 0, count: t.elementCount)
            raw.withUnsafeBytes { r in x.withUnsafeMutableBytes { DTypeConversion.convert(from: src, to: .F32, count: t.elementCount, src: r, dst: $0) } }
            if let h = e.heads {
                let rows = t.shape[0]
                x = LlamaTensorNames.permuteToGGUF(x, rows: rows, cols: rows == 0 ? 0 : t.elementCount / rows, heads: h)
            }
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
}
