import FTQCore

/// A llama.cpp Llama GGUF's hyperparameters, read from its `llama.*` metadata, and the
/// Hugging Face config.json that gives them back (formats/llama-gguf.md, "GGUF to Hugging
/// Face"): the inverse of `LlamaGGUF.metadata`.
struct GGUFLlamaConfig {
    /// The GGUF, for error messages.
    let path: String
    let meta: GGUFMetadataKeys
    let layers: Int
    let hiddenSize: Int
    let feedForward: Int
    let heads: Int
    let kvHeads: Int
    let contextLength: Int
    /// `llama.vocab_size`, or the rows of `token_embd.weight`.
    let vocabSize: Int
    /// `llama.attention.key_length`, when the GGUF gives it (config.json's `head_dim`).
    let headDim: Int?
    let rmsEpsilon: Float
    let ropeTheta: Float
    /// `llama.rope.scaling.factor` of linear RoPE scaling.
    let linearRopeFactor: Float?

    /// The per-head dimension.
    var headSize: Int { headDim ?? hiddenSize / heads }

    /// A GGUF written as a Llama checkpoint: `general.architecture` "llama" and `llama.*`
    /// hyperparameters. A GGUF with neither (a bag of tensors gguf-py labelled "llama" by
    /// default) keeps the generic conversion.
    static func applies(to model: Model) -> Bool {
        guard model.format == .gguf else { return false }
        let meta = GGUFMetadataKeys(model)
        guard case .string("llama")? = meta["general.architecture"] else { return false }
        return model.metadata.contains { $0.0.hasBytePrefix("llama.") }
    }

    init(_ model: Model) throws {
        path = model.path
        let meta = GGUFMetadataKeys(model)
        self.meta = meta
        func bad(_ key: String, _ why: String) -> FTQError {
            FTQError.invalid("convert.llama-metadata", file: model.path, "metadata key \"\(key)\" \(why)")
        }
        func count(_ key: String, _ hf: String) throws -> Int {
            guard let v = meta[key] else { throw bad(key, "is missing; config.json needs it for \(hf)") }
            return try positive(key, v)
        }
        func positive(_ key: String, _ v: GGUFValue) throws -> Int {
            guard let n = v.unsignedValue, n > 0, n <= UInt64(Int32.max) else {
                throw bad(key, "must be a positive integer, not \(v.typeName) \(JSONText.serialize(v.json))")
            }
            return Int(n)
        }
        func float(_ key: String) throws -> Float? {
            guard let v = meta[key] else { return nil }
            let f: Float
            switch v {
            case let .f32(x): f = x
            case let .f64(x): f = Float(x)
            default: throw bad(key, "must be a float, not \(v.typeName)")
            }
            guard f.isFinite, f > 0 else { throw bad(key, "must be a positive finite number, not \(f)") }
            return f
        }
        if let experts = meta["llama.expert_count"], experts.unsignedValue ?? 0 > 0 {
            throw bad("llama.expert_count", "is \(JSONText.serialize(experts.json)): a mixture of experts (Mixtral) is not a Hugging Face Llama; ftq does not convert it")
        }
        layers = try count("llama.block_count", "num_hidden_layers")
        hiddenSize = try count("llama.embedding_length", "hidden_size")
        feedForward = try count("llama.feed_forward_length", "intermediate_size")
        heads = try count("llama.attention.head_count", "num_attention_heads")
        kvHeads = try meta["llama.attention.head_count_kv"].map { try positive("llama.attention.head_count_kv", $0) } ?? heads
        contextLength = try count("llama.context_length", "max_position_embeddings")
        guard heads % kvHeads == 0 else {
            throw bad("llama.attention.head_count_kv", "(\(kvHeads)) must divide llama.attention.head_count (\(heads))")
        }
        guard let eps = try float("llama.attention.layer_norm_rms_epsilon") else {
            throw bad("llama.attention.layer_norm_rms_epsilon", "is missing; config.json needs it for rms_norm_eps")
        }
        rmsEpsilon = eps
        ropeTheta = try float("llama.rope.freq_base") ?? 10000
        let keyLength = try meta["llama.attention.key_length"].map { try positive("llama.attention.key_length", $0) }
        let valueLength = try meta["llama.attention.value_length"].map { try positive("llama.attention.value_length", $0) }
        if keyLength == nil, hiddenSize % heads != 0 {
            throw bad("llama.embedding_length", "(\(hiddenSize)) is not a multiple of llama.attention.head_count (\(heads)) and there is no llama.attention.key_length")
        }
        headDim = keyLength
        let size = keyLength ?? hiddenSize / heads
        if let valueLength, valueLength != size {
            throw bad("llama.attention.value_length", "is \(valueLength), not the key length \(size): a Hugging Face Llama has one head_dim")
        }
        if let v = meta["llama.rope.dimension_count"], try positive("llama.rope.dimension_count", v) != size {
            throw bad("llama.rope.dimension_count", "is \(v.unsignedValue!), not the head size \(size): a Hugging Face Llama rotates whole heads")
        }
        var vocab = try meta["llama.vocab_size"].map { try positive("llama.vocab_size", $0) }
        if vocab == nil, let e = model.tensor("token_embd.weight"), e.shape.count == 2, e.shape[0] > 0 { vocab = e.shape[0] }
        guard let vocab else { throw bad("llama.vocab_size", "is missing and there is no token_embd.weight to count the vocabulary") }
        vocabSize = vocab
        switch meta["llama.rope.scaling.type"] {
        case nil, .string("none")?:
            linearRopeFactor = nil
        case .string("linear")?:
            guard let f = try float("llama.rope.scaling.factor") else { throw bad("llama.rope.scaling.factor", "is missing; linear RoPE scaling needs it") }
            linearRopeFactor = f
        case let v?:
            throw FTQError.invalid("convert.llama-rope", file: model.path,
                "RoPE scaling \(JSONText.serialize(v.json)) (llama.rope.scaling.type) is not converted yet (ftq writes none, linear and Llama 3's rope_freqs back to config.json)")
        }
    }

    /// A special token id of the GGUF's vocabulary (`tokenizer.ggml.bos_token_id` ...).
    func tokenID(_ key: String) -> Int? {
        guard let v = meta["tokenizer.ggml.\(key)"]?.unsignedValue, v < UInt64(Int32.max) else { return nil }
        return Int(v)
    }

    /// config.json's members, sorted as transformers writes them: `ropeScaling` is the
    /// `rope_scaling` object (nil: none), `dtype` the torch dtype name.
    func configMembers(ropeScaling: JSONValue?, dtype: String, tied: Bool, attentionBias: Bool, mlpBias: Bool) -> [(String, JSONValue)] {
        var m: [(String, JSONValue)] = [
            ("architectures", .array([.string("LlamaForCausalLM")])),
            ("attention_bias", .bool(attentionBias)),
            ("hidden_act", .string("silu")),
            ("hidden_size", .int(hiddenSize)),
            ("intermediate_size", .int(feedForward)),
            ("max_position_embeddings", .int(contextLength)),
            ("mlp_bias", .bool(mlpBias)),
            ("model_type", .string("llama")),
            ("num_attention_heads", .int(heads)),
            ("num_hidden_layers", .int(layers)),
            ("num_key_value_heads", .int(kvHeads)),
            ("rms_norm_eps", Self.number(rmsEpsilon)),
            ("rope_theta", Self.number(ropeTheta)),
            ("tie_word_embeddings", .bool(tied)),
            ("torch_dtype", .string(dtype)),
            ("vocab_size", .int(vocabSize)),
        ]
        if let headDim { m.append(("head_dim", .int(headDim))) }
        // Every special id: `convert HFDIR -o NAME.gguf` falls back on config.json's for tokens
        // tokenizer.json does not list among its added tokens.
        for (name, id) in Self.specialTokens {
            if let v = tokenID(id) { m.append((name + "_id", .int(v))) }
        }
        if let ropeScaling { m.append(("rope_scaling", ropeScaling)) }
        return m.sorted { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }
    }

    /// Special tokens: tokenizer_config.json's name (config.json's is that plus `_id`) and
    /// the GGUF's `tokenizer.ggml.` key.
    static let specialTokens = [("bos_token", "bos_token_id"), ("eos_token", "eos_token_id"), ("unk_token", "unknown_token_id"),
                                ("sep_token", "seperator_token_id"), ("pad_token", "padding_token_id"), ("mask_token", "mask_token_id")]

    /// generation_config.json's members (the special ids), or nil when the GGUF names none.
    func generationMembers() -> [(String, JSONValue)]? {
        let m: [(String, JSONValue)] = [("bos_token_id", "bos_token_id"), ("eos_token_id", "eos_token_id"), ("pad_token_id", "padding_token_id")]
            .compactMap { key, id in tokenID(id).map { (key, .int($0)) } }
        return m.isEmpty ? nil : m
    }

    /// A float32 as the shortest decimal that reads back (as a double, then rounded to float32,
    /// as `LlamaGGUF` and llama.cpp's converter read config.json) to the same bits.
    static func number(_ v: Float) -> JSONValue {
        let short = "\(v)"
        if let d = Double(short), Float(d).bitPattern == v.bitPattern { return .number(short) }
        return .number("\(Double(v))")
    }

    /// Pretty JSON as transformers writes its files: two-space indent, a final newline.
    static func file(_ members: [(String, JSONValue)], asciiOnly: Bool = true) -> [UInt8] {
        Array((JSONText.serialize(.object(members), indent: 2, asciiOnly: asciiOnly) + "\n").utf8)
    }
}

/// A GGUF's key-values by exact key.
struct GGUFMetadataKeys {
    private let values: [ExactName: GGUFValue]

    init(_ model: Model) {
        var v: [ExactName: GGUFValue] = [:]
        for (k, value) in model.metadata {
            if case let .gguf(g) = value { v[ExactName(k)] = g }
        }
        values = v
    }

    subscript(_ key: String) -> GGUFValue? { values[ExactName(key)] }
}
