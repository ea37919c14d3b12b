import FTQCore

/// The shape of a transformer that memory planning needs (formats/plan.md, "Architecture").
///
/// Read from a Hugging Face `config.json` (``init(config:)``), from GGUF metadata, or
/// inferred from tensor names and shapes (``PlanModel``); ``source`` says which.
public struct PlanArchitecture: Sendable, Equatable {
    /// Where the figures came from.
    public enum Source: String, Sendable, Equatable {
        case config = "config.json"
        case ggufMetadata = "gguf metadata"
        case tensorNames = "tensor names and shapes"
    }

    /// `model_type` (`llama`, `mistral`, `qwen2`, `gpt2`, `gpt_bigcode`, `t5`), or the GGUF
    /// architecture name.
    public var modelType: String
    /// d_model.
    public var hidden: Int
    /// Decoder layers (every layer of a decoder-only model).
    public var layers: Int
    /// Encoder layers of an encoder-decoder model; 0 for decoder-only models.
    public var encoderLayers: Int
    /// Query heads.
    public var heads: Int
    /// Key-value heads (fewer than `heads` with grouped-query attention, 1 with multi-query).
    public var kvHeads: Int
    /// Elements per head.
    public var headDim: Int
    /// Width of the MLP's hidden layer.
    public var intermediate: Int
    /// Vocabulary size (rows of the embedding).
    public var vocab: Int
    /// The output head shares the embedding's weights.
    public var tiedEmbeddings: Bool
    /// Gated MLP (SwiGLU, GeGLU: three matrices) rather than two matrices.
    public var gatedMLP: Bool
    /// Residual dropout is on in the model's config (adds one mask byte per element it drops).
    public var dropout: Bool
    /// The longest sequence the model was trained for, when it says.
    public var maxPositions: Int?
    /// Rows of a learned absolute position embedding (GPT-2, StarCoder); 0 for none.
    public var learnedPositions: Int
    /// Attention projections carry biases (Qwen2 q/k/v; GPT-2 and StarCoder everywhere).
    public var attentionBias: Bool
    /// MLP projections carry biases.
    public var mlpBias: Bool
    /// Where the figures came from.
    public var source: Source
    /// Figures that were assumed rather than read, in words.
    public var assumptions: [String]

    /// Query projection width: heads x head dimension.
    public var queryDim: Int { heads * headDim }
    /// Key (or value) projection width: KV heads x head dimension.
    public var kvDim: Int { kvHeads * headDim }
    /// An encoder-decoder model (T5).
    public var isEncoderDecoder: Bool { encoderLayers > 0 }

    /// The model types ``init(config:)`` reads.
    public static let supportedModelTypes = ["llama", "mistral", "qwen2", "gpt2", "gpt_bigcode", "t5"]

    public init(modelType: String, hidden: Int, layers: Int, encoderLayers: Int = 0, heads: Int, kvHeads: Int,
                headDim: Int, intermediate: Int, vocab: Int, tiedEmbeddings: Bool, gatedMLP: Bool, dropout: Bool,
                maxPositions: Int?, learnedPositions: Int = 0, attentionBias: Bool = false, mlpBias: Bool = false,
                source: Source, assumptions: [String] = []) {
        self.modelType = modelType
        self.hidden = hidden
        self.layers = layers
        self.encoderLayers = encoderLayers
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.intermediate = intermediate
        self.vocab = vocab
        self.tiedEmbeddings = tiedEmbeddings
        self.gatedMLP = gatedMLP
        self.dropout = dropout
        self.maxPositions = maxPositions
        self.learnedPositions = learnedPositions
        self.attentionBias = attentionBias
        self.mlpBias = mlpBias
        self.source = source
        self.assumptions = assumptions
    }

    /// Reads a Hugging Face `config.json` (parsed with ``StrictJSON``).
    ///
    /// Errors are `plan.config` (invalid input, exit 3) naming the member at fault.
    public init(config: JSONValue) throws {
        guard case .object = config else { throw Self.bad("the document must be a JSON object") }
        guard case let .string(type)? = config["model_type"] else {
            throw Self.bad("\"model_type\" is missing or not a string (ftq plan reads \(Self.supportedModelTypes.joined(separator: ", ")))")
        }
        let c = ConfigReader(config)
        switch type {
        case "llama", "mistral", "qwen2":
            let h = try c.int("hidden_size")
            let heads = try c.int("num_attention_heads")
            let kv = try c.optionalInt("num_key_value_heads") ?? heads
            let headDim = try c.optionalInt("head_dim") ?? (h / heads)
            guard h % heads == 0 || c.has("head_dim") else { throw Self.bad("\"hidden_size\" \(h) is not a multiple of \"num_attention_heads\" \(heads)") }
            guard heads % kv == 0 else { throw Self.bad("\"num_attention_heads\" \(heads) is not a multiple of \"num_key_value_heads\" \(kv)") }
            let qkvBias = type == "qwen2" ? true : (try c.optionalBool("attention_bias") ?? false)
            self.init(modelType: type, hidden: h, layers: try c.int("num_hidden_layers"), heads: heads, kvHeads: kv,
                      headDim: headDim, intermediate: try c.int("intermediate_size"), vocab: try c.int("vocab_size"),
                      tiedEmbeddings: try c.optionalBool("tie_word_embeddings") ?? false, gatedMLP: true,
                      dropout: (try c.optionalNumber("attention_dropout") ?? 0) > 0,
                      maxPositions: try c.optionalInt("max_position_embeddings"),
                      attentionBias: qkvBias, mlpBias: try c.optionalBool("mlp_bias") ?? false, source: .config)
        case "gpt2", "gpt_bigcode":
            let h = try c.int("n_embd")
            let heads = try c.int("n_head")
            guard h % heads == 0 else { throw Self.bad("\"n_embd\" \(h) is not a multiple of \"n_head\" \(heads)") }
            let multiQuery = type == "gpt_bigcode" ? (try c.optionalBool("multi_query") ?? true) : false
            let positions = try c.int("n_positions")
            self.init(modelType: type, hidden: h, layers: try c.int("n_layer"), heads: heads, kvHeads: multiQuery ? 1 : heads,
                      headDim: h / heads, intermediate: try c.optionalInt("n_inner") ?? 4 * h, vocab: try c.int("vocab_size"),
                      tiedEmbeddings: try c.optionalBool("tie_word_embeddings") ?? true, gatedMLP: false,
                      dropout: (try c.optionalNumber("resid_pdrop") ?? 0.1) > 0, maxPositions: positions,
                      learnedPositions: positions, attentionBias: true, mlpBias: true, source: .config)
        case "t5":
            let h = try c.int("d_model")
            let heads = try c.int("num_heads")
            let layers = try c.int("num_layers")
            let ff: String
            switch config["feed_forward_proj"] {
            case nil: ff = "relu"
            case let .string(s)?: ff = s
            case let v?: throw Self.bad("\"feed_forward_proj\" is \(v.kindName), expected a string such as \"relu\" or \"gated-gelu\"")
            }
            self.init(modelType: type, hidden: h, layers: try c.optionalInt("num_decoder_layers") ?? layers, encoderLayers: layers,
                      heads: heads, kvHeads: heads, headDim: try c.int("d_kv"), intermediate: try c.int("d_ff"),
                      vocab: try c.int("vocab_size"), tiedEmbeddings: try c.optionalBool("tie_word_embeddings") ?? true,
                      gatedMLP: ff.hasPrefix("gated-"), dropout: (try c.optionalNumber("dropout_rate") ?? 0.1) > 0,
                      maxPositions: try c.optionalInt("n_positions"), source: .config)
        default:
            throw Self.bad("model_type \"\(type)\" is not one ftq plan knows (\(Self.supportedModelTypes.joined(separator: ", ")))")
        }
        guard layers > 0, hidden > 0, heads > 0, kvHeads > 0, headDim > 0, intermediate > 0, vocab > 0 else {
            throw Self.bad("sizes must be positive")
        }
    }

    static func bad(_ what: String) -> FTQError { FTQError.invalid("plan.config", "config.json: \(what)") }
}

/// Typed reads of config.json members; every failure names the member.
struct ConfigReader {
    let root: JSONValue
    init(_ root: JSONValue) { self.root = root }

    func has(_ key: String) -> Bool {
        if let v = root[key], v != .null { return true }
        return false
    }

    /// A required positive integer.
    func int(_ key: String) throws -> Int {
        guard let v = root[key], v != .null else { throw PlanArchitecture.bad("\"\(key)\" is missing") }
        return try positive(v, key)
    }

    /// An optional positive integer (absent or null: nil).
    func optionalInt(_ key: String) throws -> Int? {
        guard let v = root[key], v != .null else { return nil }
        return try positive(v, key)
    }

    func positive(_ v: JSONValue, _ key: String) throws -> Int {
        guard let n = v.nonNegativeInteger, n > 0, n <= 1 << 40 else {
            throw PlanArchitecture.bad("\"\(key)\" must be a positive integer (got \(v.kindName == "a number" ? JSONText.serialize(v) : v.kindName))")
        }
        return Int(n)
    }

    func optionalBool(_ key: String) throws -> Bool? {
        switch root[key] {
        case nil, .null?: return nil
        case let .bool(b)?: return b
        case let v?: throw PlanArchitecture.bad("\"\(key)\" must be true or false (got \(v.kindName))")
        }
    }

    func optionalNumber(_ key: String) throws -> Double? {
        switch root[key] {
        case nil, .null?: return nil
        case let .number(text)?:
            guard let d = Double(text), d.isFinite else { throw PlanArchitecture.bad("\"\(key)\" is not a finite number") }
            return d
        case let v?: throw PlanArchitecture.bad("\"\(key)\" must be a number (got \(v.kindName))")
        }
    }
}
