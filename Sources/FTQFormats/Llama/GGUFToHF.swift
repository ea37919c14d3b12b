import FTQCore
import FTQKernels

/// A llama.cpp Llama GGUF written as a Hugging Face directory that transformers loads
/// (`LlamaForCausalLM.from_pretrained`): Hugging Face names, q/k rows back in Hugging Face's
/// order, quantized tensors decoded, config.json from the `llama.*` metadata and the tokenizer
/// files from the `tokenizer.*` metadata (formats/llama-gguf.md, "GGUF to Hugging Face").
/// The inverse of `ftq convert HFDIR -o NAME.gguf` for float types: a GGUF ftq wrote from an
/// F32 or F16 checkpoint comes back as the same GGUF.
public struct GGUFToHF {
    public let model: Model
    public let options: ConvertOptions

    /// One safetensors tensor of the output.
    struct Output {
        var name: String
        var dtype: DType
        var shape: [Int]
        /// The GGUF tensor's index.
        var source: Int
        /// The heads of a q or k projection whose rows go back to Hugging Face's order.
        var heads: Int?
    }

    /// Whether `model` is a Llama GGUF this conversion applies to: `general.architecture`
    /// "llama" and `llama.*` hyperparameters. Every other GGUF keeps the generic conversion.
    public static func applies(to model: Model) -> Bool { GGUFLlamaConfig.applies(to: model) }

    public init(model: Model, options: ConvertOptions) {
        self.model = model
        self.options = options
    }

    /// Writes the directory and returns the files written (sidecars not included).
    public func run(to target: OutputTarget) throws -> [WrittenFile] {
        guard case let .hfDirectory(dir, maxShardSize) = target else {
            throw FTQError.usage("usage.conflict", "a Llama GGUF becomes a Hugging Face checkpoint in a directory: give -o a directory name, not \(target.path)")
        }
        let conv = Converter(model: model, options: options)
        try conv.refuseInputAsOutput(dir)
        let config = try GGUFLlamaConfig(model)
        let outs = try outputs(config)
        let names = Set(outs.map { ExactName($0.name) })
        let tied = !names.contains(ExactName("lm_head.weight"))
        let attentionBias = names.contains(ExactName("model.layers.0.self_attn.q_proj.bias"))
        let mlpBias = names.contains(ExactName("model.layers.0.mlp.gate_proj.bias"))
        let dtypeName = torchDType(outs)
        func members(_ ropeScaling: JSONValue?) -> [(String, JSONValue)] {
            config.configMembers(ropeScaling: ropeScaling, dtype: dtypeName, tied: tied, attentionBias: attentionBias, mlpBias: mlpBias)
        }
        var ropeScaling: JSONValue? = config.linearRopeFactor.map {
            .object([("factor", GGUFLlamaConfig.number($0)), ("rope_type", .string("linear"))])
        }
        if let freqs = model.tensor("rope_freqs.weight") {
            guard ropeScaling == nil else {
                throw FTQError.invalid("convert.llama-rope", file: model.path, "the GGUF has both linear RoPE scaling and rope_freqs.weight; transformers has no equivalent")
            }
            ropeScaling = try llama3Scaling(try floats(freqs), config: config, members: members)
        }
        var extra: [(name: String, bytes: [UInt8])] = [("config.json", GGUFLlamaConfig.file(members(ropeScaling)))]
        if let generation = config.generationMembers() {
            extra.append(("generation_config.json", GGUFLlamaConfig.file(generation)))
        }
        extra += try tokenizerFiles(config)
        let sizes = try outs.map { o -> Int in
            try Checked.mul(try Checked.product(o.shape, "convert.size-overflow", "tensor \"\(o.name)\""), o.dtype.bits / 8,
                            "convert.size-overflow", "tensor \"\(o.name)\"")
        }
        let buffers = ChunkBuffers()
        return try conv.writeDirectory(dir, maxShardSize: maxShardSize, names: outs.map(\.name), sizes: sizes,
                                       parameters: outs.reduce(0) { $0 + model.tensors[$1.source].elementCount },
                                       extraFiles: extra) { indices, staged, name, progress in
            let specs = indices.map { (name: outs[$0].name, dtype: outs[$0].dtype, shape: outs[$0].shape) }
            return try conv.streamSafetensors(specs, metadata: [("format", "pt")], to: staged, name: name, progress: progress,
                                              label: "convert") { i, _, emit in
                let o = outs[indices[i]]
                let t = model.tensors[o.source]
                if let heads = o.heads {
                    let bytes = try permutedBytes(t, heads: heads, as: o.dtype)
                    try bytes.withUnsafeBytes { try emit($0) }
                } else {
                    try conv.copyConverted(t, as: o.dtype, to: emit, buffers: buffers)
                }
            }
        }
    }

    /// config.json's `torch_dtype`: --dtype, else the type the 2-D weights share, else float32.
    func torchDType(_ outs: [Output]) -> String {
        let types = Set(outs.filter { $0.shape.count == 2 }.map(\.dtype))
        let d = options.dtype ?? (types.count == 1 ? types.first! : .F32)
        switch d {
        case .F16: return "float16"
        case .BF16: return "bfloat16"
        case .F64: return "float64"
        default: return "float32"
        }
    }

    // MARK: tensors

    /// The output tensors in the GGUF's order: every tensor but `rope_freqs.weight` renamed,
    /// its shape checked against the hyperparameters, and the set checked complete.
    func outputs(_ c: GGUFLlamaConfig) throws -> [Output] {
        func bad(_ code: String, _ why: String) -> FTQError { FTQError.invalid(code, file: model.path, why) }
        var out: [Output] = []
        var present = Set<ExactName>()
        for (k, t) in model.tensors.enumerated() where t.name != "rope_freqs.weight" {
            guard let hf = LlamaTensorNames.hfTensor(t.name), let want = expectedShape(t.name, c) else {
                throw bad("convert.llama-tensor",
                    "tensor \"\(t.name)\" has no Hugging Face Llama name (ftq maps token_embd, blk.N.{attn_norm, attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down}, output_norm, output, biases of the projections, and rope_freqs)")
            }
            guard t.shape == want else {
                throw bad("convert.llama-tensor", "tensor \"\(t.name)\" has shape \(t.shape), expected \(want) from the llama.* metadata")
            }
            let dtype: DType
            if let d = t.type.plainDType {
                guard d.isConvertibleFloat else {
                    throw bad("convert.llama-dtype", "tensor \"\(t.name)\" is \(t.type.name), not a float or quantized float type")
                }
                dtype = options.dtype ?? d
            } else {
                guard case let .ggml(g) = t.type, GGMLDequantizer.kernel(for: g) != nil else {
                    throw bad("convert.quantized-tensor", "tensor \"\(t.name)\" is \(t.type.name), which ftq cannot dequantize yet")
                }
                dtype = options.dtype ?? .F32
            }
            var o = Output(name: hf, dtype: dtype, shape: t.shape, source: k)
            if t.name.hasByteSuffix(".attn_q.weight") || t.name.hasByteSuffix(".attn_q.bias") { o.heads = c.heads }
            if t.name.hasByteSuffix(".attn_k.weight") || t.name.hasByteSuffix(".attn_k.bias") { o.heads = c.kvHeads }
            if let h = o.heads, t.shape[0] % (2 * h) != 0 {
                throw bad("convert.llama-heads", "tensor \"\(t.name)\" \(t.shape): its rows do not split into \(h) heads of an even size")
            }
            out.append(o)
            present.insert(ExactName(t.name))
        }
        // Every weight transformers needs; biases all or none, as config.json says one flag.
        // Names are made layer by layer and the first missing one ends the search, so the work
        // is bounded by the tensors present, whatever llama.block_count claims.
        func missing(_ names: (Int) -> [String]) -> String? {
            for n in 0..<c.layers {
                if let m = names(n).first(where: { !present.contains(ExactName($0)) }) { return m }
            }
            return nil
        }
        let weights = ["attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down"]
        if let m = ["token_embd.weight", "output_norm.weight"].first(where: { !present.contains(ExactName($0)) })
            ?? missing({ n in weights.map { "blk.\(n).\($0).weight" } }) {
            throw bad("convert.llama-tensor", "tensor \"\(m)\" is missing (llama.block_count is \(c.layers)); transformers would fill it with random values")
        }
        for group in [["attn_q", "attn_k", "attn_v", "attn_output"], ["ffn_gate", "ffn_up", "ffn_down"]] {
            // The first bias of the group in layer order, found among the tensors present.
            let isBias = { (name: String) -> (layer: Int, index: Int)? in
                guard name.hasPrefix("blk."), name.hasSuffix(".bias") else { return nil }
                let parts = name.split(separator: ".", omittingEmptySubsequences: false)
                guard parts.count == 4, let n = Int(parts[1]), n >= 0, n < c.layers, let i = group.firstIndex(of: String(parts[2])) else { return nil }
                return (n, i)
            }
            let have = model.tensors.compactMap { t in isBias(t.name).map { (t.name, $0) } }
                .min { ($0.1.layer, $0.1.index) < ($1.1.layer, $1.1.index) }
            if let have, let m = missing({ n in group.map { "blk.\(n).\($0).bias" } }) {
                throw bad("convert.llama-tensor", "tensor \"\(m)\" is missing while \"\(have.0)\" is present; a Hugging Face Llama has biases on all of \(group.joined(separator: ", ")) or none")
            }
        }
        return out
    }

    /// The shape a Llama tensor has (numpy order), or nil for a name that is not one.
    func expectedShape(_ name: String, _ c: GGUFLlamaConfig) -> [Int]? {
        let h = c.hiddenSize, q = c.heads * c.headSize, kv = c.kvHeads * c.headSize, f = c.feedForward
        switch name {
        case "token_embd.weight", "output.weight": return [c.vocabSize, h]
        case "output_norm.weight": return [h]
        default: break
        }
        guard let n = LlamaTensorNames.layer(of: name), n < c.layers else { return nil }
        let rest = name.split(separator: ".", maxSplits: 2, omittingEmptySubsequences: false)[2]
        let bias = rest.hasSuffix(".bias")
        let module = rest.hasSuffix(".weight") ? String(rest.dropLast(7)) : bias ? String(rest.dropLast(5)) : ""
        // (rows, columns) of each module's weight; a bias has the rows.
        let dims: (Int, Int)
        switch module {
        case "attn_norm", "ffn_norm": return bias ? nil : [h]
        case "attn_q": dims = (q, h)
        case "attn_k", "attn_v": dims = (kv, h)
        case "attn_output": dims = (h, q)
        case "ffn_gate", "ffn_up": dims = (f, h)
        case "ffn_down": dims = (h, f)
        default: return nil
        }
        return bias ? [dims.0] : [dims.0, dims.1]
    }

    /// A tensor's values as float32 (decoded when quantized).
    func floats(_ t: TensorEntry) throws -> [Float] {
        let raw = try model.read(t)
        var x = [Float](repeating: 0, count: t.elementCount)
        if let src = t.type.plainDType, src.isConvertibleFloat {
            raw.withUnsafeBytes { r in x.withUnsafeMutableBytes { DTypeConversion.convert(from: src, to: .F32, count: t.elementCount, src: r, dst: $0) } }
        } else if case let .ggml(g) = t.type, let kernel = GGMLDequantizer.kernel(for: g) {
            raw.withUnsafeBytes { r in x.withUnsafeMutableBufferPointer { kernel(r, $0) } }
        } else {
            throw FTQError.invalid("convert.llama-dtype", file: model.path, "tensor \"\(t.name)\" is \(t.type.name), not a float or quantized float type")
        }
        return x
    }

    /// A q or k projection read whole (at most a hidden-size square), as `dtype`, its rows
    /// back in Hugging Face's order. Float rows of the output's own dtype move unchanged.
    func permutedBytes(_ t: TensorEntry, heads: Int, as dtype: DType) throws -> [UInt8] {
        var bytes: [UInt8]
        if let src = t.type.plainDType, src == dtype {
            bytes = try model.read(t)
        } else {
            let x = try floats(t)
            bytes = [UInt8](repeating: 0, count: x.count * dtype.bits / 8)
            x.withUnsafeBytes { r in bytes.withUnsafeMutableBytes { DTypeConversion.convert(from: .F32, to: dtype, count: x.count, src: r, dst: $0) } }
        }
        return LlamaTensorNames.rowsToHF(bytes, rows: t.shape[0], heads: heads)
    }
}
