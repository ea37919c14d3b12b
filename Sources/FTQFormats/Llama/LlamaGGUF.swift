#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import FTQCore

/// A Hugging Face Llama-family checkpoint written as a GGUF that llama.cpp runs
/// (formats/llama-gguf.md): its config.json read into llama.cpp's `llama.*` (or `qwen2.*`)
/// metadata, and the tensor plan (llama.cpp's names, q/k rows in its per-head order for
/// `llama`, RoPE factors).
public struct LlamaGGUF: Sendable {
    /// config.json `model_type`s ftq writes for llama.cpp, and llama.cpp's architecture for each.
    public static let architectures: [(modelType: String, architecture: String)] = [
        ("llama", "llama"), ("mistral", "llama"), ("qwen2", "qwen2"),
    ]
    /// config.json `model_type`s ftq writes for llama.cpp.
    public static let modelTypes = architectures.map(\.modelType)

    public let configPath: String
    /// `general.name`: the checkpoint directory's name.
    public let name: String
    public let modelType: String
    /// llama.cpp's architecture: `llama` (Llama, Mistral) or `qwen2`.
    public let architecture: String
    public let hiddenSize: Int
    public let layers: Int
    public let feedForward: Int
    public let heads: Int
    public let kvHeads: Int
    public let contextLength: Int
    public let vocabSize: Int
    /// config.json's `head_dim`, when it gives one.
    public let headDim: Int?
    public let ropeTheta: Double
    public let rmsEpsilon: Double
    /// Whether config.json gives `rope_theta` and `rms_norm_eps` (convert_hf_to_gguf writes
    /// qwen2's only when it does; llama's always, with llama.cpp's defaults).
    let ropeThetaGiven: Bool, rmsEpsilonGiven: Bool
    public let ropeScaling: RopeScaling

    public enum RopeScaling: Sendable, Equatable {
        case none
        /// Position interpolation: `rope.scaling.type` "linear" and the factor.
        case linear(factor: Double)
        /// Llama 3.1's frequency-dependent scaling, stored as the `rope_freqs.weight` tensor.
        case llama3(factor: Double, lowFreqFactor: Double, highFreqFactor: Double, originalContext: Double)
    }

    /// The per-head dimension RoPE rotates.
    public var ropeDimension: Int { headDim ?? hiddenSize / heads }

    /// The Llama-family configuration of a Hugging Face directory input, or nil when `model`
    /// is not a directory with a config.json that names a `model_type`. Any `model_type` but
    /// those of `architectures` is refused (`convert.architecture`), naming it.
    public static func detect(_ model: Model) throws -> LlamaGGUF? {
        guard case .directory = PathKind.of(model.path) else { return nil }
        let path = joinPath(model.path, "config.json")
        guard PathKind.of(path) == .regularFile else { return nil }
        let f = try InputFile(path)
        guard f.size <= CompanionFiles.maxBytes else { return nil }
        var bytes = [UInt8](repeating: 0, count: f.size)
        try bytes.withUnsafeMutableBytes { try f.read(into: $0, at: 0) }
        let config = JSONValue.object(try CompanionFiles.parseConfig(bytes, path: path))
        guard case let .string(mt)? = config["model_type"] else { return nil }
        guard modelTypes.contains(mt) else {
            let list = architectures.map { "\($0.modelType) (llama.cpp's \($0.architecture))" }.joined(separator: ", ")
            throw FTQError.invalid("convert.architecture", file: path,
                "model_type \"\(TerminalText.escaped(mt, limit: 100))\" is not an architecture ftq writes as a GGUF llama.cpp runs; it writes \(list). A single .safetensors file converts to GGUF with its tensor names unchanged")
        }
        var base = splitPath(model.path.hasByteSuffix("/") ? String(model.path.dropLast()) : model.path).base
        if base.isEmpty || base == "." { base = "model" }
        return try LlamaGGUF(config: config, path: path, name: base, modelType: mt)
    }

    init(config: JSONValue, path: String, name: String, modelType: String) throws {
        func bad(_ key: String, _ why: String) -> FTQError {
            FTQError.invalid("convert.llama-config", file: path, "config.json \"\(key)\" \(why)")
        }
        func int(_ key: String, in obj: JSONValue? = nil, default def: Int? = nil) throws -> Int {
            guard let v = (obj ?? config)[key], v != .null else {
                if let def { return def }
                throw bad(key, "is missing; llama.cpp needs it")
            }
            guard let n = v.nonNegativeInteger, n > 0, n <= UInt64(Int32.max) else { throw bad(key, "must be a positive integer, not \(v.kindName)") }
            return Int(n)
        }
        func double(_ key: String, in obj: JSONValue?, default def: Double? = nil) throws -> Double? {
            guard let v = obj?[key], v != .null else { return def }
            guard case let .number(text) = v, let d = Double(text), d.isFinite else { throw bad(key, "must be a number, not \(v.kindName)") }
            return d
        }
        self.configPath = path
        self.name = name
        self.modelType = modelType
        architecture = Self.architectures.first { $0.modelType == modelType }?.architecture ?? "llama"
        hiddenSize = try int("hidden_size")
        layers = try int("num_hidden_layers")
        feedForward = try int("intermediate_size")
        heads = try int("num_attention_heads")
        kvHeads = try int("num_key_value_heads", default: heads)
        contextLength = try int("max_position_embeddings")
        vocabSize = try int("vocab_size")
        if let v = config["head_dim"], v != .null { headDim = try int("head_dim") } else { headDim = nil }
        if headDim == nil, hiddenSize % heads != 0 { throw bad("hidden_size", "is not a multiple of num_attention_heads") }
        guard heads % kvHeads == 0 else { throw bad("num_key_value_heads", "must divide num_attention_heads") }
        rmsEpsilonGiven = config["rms_norm_eps"].map { $0 != .null } ?? false
        rmsEpsilon = try double("rms_norm_eps", in: config) ?? 1e-6
        // transformers 5 keeps RoPE in rope_parameters; 4.x in rope_theta and rope_scaling.
        let params = config["rope_parameters"].flatMap { $0 == .null ? nil : $0 }
        let scaling = params ?? config["rope_scaling"].flatMap { $0 == .null ? nil : $0 }
        let theta = try double("rope_theta", in: params) ?? double("rope_theta", in: config)
        ropeThetaGiven = theta != nil
        ropeTheta = theta ?? 10000
        var kind = "default"
        if let scaling {
            guard case .object = scaling else { throw bad(params == nil ? "rope_scaling" : "rope_parameters", "must be an object") }
            if case let .string(s)? = scaling["rope_type"] ?? scaling["type"] { kind = s }
        }
        switch kind {
        case "default":
            ropeScaling = .none
        case "linear":
            ropeScaling = .linear(factor: try double("factor", in: scaling) ?? 1)
        case "llama3" where architecture == "llama":
            ropeScaling = .llama3(factor: try double("factor", in: scaling, default: 8)!,
                                  lowFreqFactor: try double("low_freq_factor", in: scaling, default: 1)!,
                                  highFreqFactor: try double("high_freq_factor", in: scaling, default: 4)!,
                                  originalContext: try double("original_max_position_embeddings", in: scaling, default: 8192)!)
        default:
            throw FTQError.invalid("convert.llama-rope", file: path,
                "RoPE scaling \"\(kind)\" is not supported yet (ftq writes default, linear and, for llama, llama3 RoPE for llama.cpp)")
        }
    }

    /// The heads of a tensor whose rows llama.cpp permutes (q and k, weights and biases).
    public func permutedHeads(_ ggufName: String) -> Int? {
        // convert_hf_to_gguf permutes only for its llama architecture.
        guard architecture == "llama" else { return nil }
        if ggufName.hasByteSuffix(".attn_q.weight") || ggufName.hasByteSuffix(".attn_q.bias") { return heads }
        if ggufName.hasByteSuffix(".attn_k.weight") || ggufName.hasByteSuffix(".attn_k.bias") { return kvHeads }
        return nil
    }

    /// llama3 RoPE: `rope_freqs.weight`, one factor per rotated pair, computed as
    /// convert_hf_to_gguf does (float32 arithmetic, as its torch tensors are).
    public func ropeFreqs() -> [Float]? {
        guard case let .llama3(factor64, low64, high64, old64) = ropeScaling else { return nil }
        let dim = ropeDimension
        let factor = Float(factor64), low = Float(low64), high = Float(high64), old = Float(old64)
        let lowWavelen = old / low, highWavelen = old / high
        return stride(from: 0, to: dim, by: 2).map { i in
            let freq = 1 / powf(Float(ropeTheta), Float(i) / Float(dim))
            let wavelen = 2 * Float.pi / freq
            if wavelen < highWavelen { return 1 }
            if wavelen > lowWavelen { return factor }
            let smooth = (old / wavelen - low) / (high - low)
            return 1 / ((1 - smooth) / factor + smooth)
        }
    }

    /// The architecture key-values, in convert_hf_to_gguf's order; `fileType` is
    /// `general.file_type` when the model has one main type.
    public func metadata(fileType: UInt32?, quantized: Bool) -> [(String, GGUFValue)] {
        let a = architecture
        var m: [(String, GGUFValue)] = [
            ("general.architecture", .string(a)),
            ("general.name", .string(name)),
            ("\(a).block_count", .u32(UInt32(layers))),
            ("\(a).context_length", .u32(UInt32(contextLength))),
            ("\(a).embedding_length", .u32(UInt32(hiddenSize))),
            ("\(a).feed_forward_length", .u32(UInt32(feedForward))),
            ("\(a).attention.head_count", .u32(UInt32(heads))),
            ("\(a).attention.head_count_kv", .u32(UInt32(kvHeads))),
        ]
        if a == "llama" || ropeThetaGiven { m.append(("\(a).rope.freq_base", .f32(Float(ropeTheta)))) }
        if a == "llama" || rmsEpsilonGiven { m.append(("\(a).attention.layer_norm_rms_epsilon", .f32(Float(rmsEpsilon)))) }
        if let headDim {
            m.append(("\(a).attention.key_length", .u32(UInt32(headDim))))
            m.append(("\(a).attention.value_length", .u32(UInt32(headDim))))
        }
        if let fileType { m.append(("general.file_type", .u32(fileType))) }
        if a == "llama" {
            // convert_hf_to_gguf's llama architecture adds these; its qwen2 does not.
            m.append(("llama.vocab_size", .u32(UInt32(vocabSize))))
            m.append(("llama.rope.dimension_count", .u32(UInt32(ropeDimension))))
        }
        if case let .linear(factor) = ropeScaling {
            m.append(("\(a).rope.scaling.type", .string("linear")))
            m.append(("\(a).rope.scaling.factor", .f32(Float(factor))))
        }
        if quantized { m.append(("general.quantization_version", .u32(2))) }
        return m
    }
}
