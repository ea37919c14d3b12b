import FTQCore
import FTQFormats

/// A model as planning sees it: its architecture, its tensors and, when a file was read, the
/// parameter counts its header declares (formats/plan.md, "Inputs").
public struct PlanModel: Sendable {
    public var architecture: PlanArchitecture
    /// Every parameter tensor, with its role.
    public var tensors: [PlanTensor]
    /// Parameters by dtype as the safetensors or GGUF header declares them (no weights read);
    /// nil when only a config.json was given.
    public var headerParameters: [(dtype: String, count: Int)]?
    /// Things the user should know about the input (printed as warnings).
    public var notes: [String]

    public init(architecture: PlanArchitecture, tensors: [PlanTensor], headerParameters: [(dtype: String, count: Int)]? = nil, notes: [String] = []) {
        self.architecture = architecture
        self.tensors = tensors
        self.headerParameters = headerParameters
        self.notes = notes
    }

    /// All parameters.
    public var parameterCount: Int { tensors.reduce(0) { $0 + $1.elements } }

    /// Sum of the header's counts, when there is a header.
    public var headerParameterCount: Int? { headerParameters.map { $0.reduce(0) { $0 + $1.count } } }

    /// A model described by a config.json alone.
    public init(config: JSONValue) throws {
        let a = try PlanArchitecture(config: config)
        try Self.checkMagnitudes(a)
        self.init(architecture: a, tensors: a.tensors())
    }

    /// Caps on what a config may describe (formats/limits.md).
    public static let maxParameters = Limits.planParameters
    public static let maxLayers = Limits.planLayers

    /// Refuses a config whose sizes would overflow the counts planning derives from them (a
    /// config.json is untrusted input): the parameter count, and one token's KV cache over all
    /// layers, with checked arithmetic (`plan.config`, exit 3).
    static func checkMagnitudes(_ a: PlanArchitecture) throws {
        // Tensors are listed per layer: bound the layer counts before listing them.
        guard a.layers <= maxLayers, a.encoderLayers <= maxLayers else {
            throw PlanArchitecture.bad("\(max(a.layers, a.encoderLayers)) layers: more than \(maxLayers), not a real model")
        }
        func product(_ xs: [Int]) -> Int? {
            var p = 1
            for x in xs {
                let (r, o) = p.multipliedReportingOverflow(by: x)
                if o || r > maxParameters { return nil }
                p = r
            }
            return p
        }
        var total = 0
        for t in a.tensors() {
            guard let n = product(t.shape) else { total = maxParameters + 1; break }
            total += n
            if total > maxParameters { break }
        }
        guard total <= maxParameters else {
            throw PlanArchitecture.bad("the sizes describe more than 2^50 parameters (hidden_size, intermediate_size, num_hidden_layers, vocab_size, heads): not a real model")
        }
        // The KV cache of one token (K and V, 2 bytes each) times --seq (at most 2^30) must fit.
        guard let kv = product([4, a.layers, a.kvDim]), kv <= Limits.planKVBytesPerToken else {
            throw PlanArchitecture.bad("layers x KV heads x head dim is \(a.layers) x \(a.kvDim): more than any real model's KV cache per token")
        }
    }

    /// Parameters by dtype from a model's header.
    public static func headerCounts(_ model: Model) -> [(dtype: String, count: Int)] {
        var order: [String] = []
        var by: [String: Int] = [:]
        for t in model.tensors {
            if by[t.type.name] == nil { order.append(t.type.name) }
            by[t.type.name, default: 0] += t.elementCount
        }
        return order.map { ($0, by[$0]!) }
    }

    /// A model whose architecture comes from `config` and whose header is `model`'s: the
    /// tensors are those the config describes; the header's counts are kept and compared.
    public init(config: JSONValue, header model: Model) throws {
        try self.init(config: config)
        let counts = Self.headerCounts(model)
        headerParameters = counts
        let header = counts.reduce(0) { $0 + $1.count }
        if header != parameterCount {
            notes.append("the header declares \(header) parameters and config.json describes \(parameterCount) (a quantized or partial checkpoint?): planning from config.json")
        }
    }

    /// A model without a config.json: the architecture is read from GGUF metadata where it
    /// has it, and otherwise inferred from tensor names and shapes (formats/plan.md,
    /// "Inferring the architecture"). Errors are `plan.infer` (exit 3).
    public init(header model: Model) throws {
        let (arch, tensors) = try PlanInference.infer(model)
        self.init(architecture: arch, tensors: tensors, headerParameters: Self.headerCounts(model),
                  notes: ["no config.json: architecture \(arch.source == .ggufMetadata ? "read from GGUF metadata and" : "inferred from") tensor names and shapes"
                          + (arch.assumptions.isEmpty ? "" : "; " + arch.assumptions.joined(separator: "; "))])
    }
}

/// Inference of an architecture from a header (formats/plan.md, "Inferring the architecture").
enum PlanInference {
    static func fail(_ model: Model, _ what: String) -> FTQError {
        FTQError.invalid("plan.infer", file: model.path, "cannot infer the architecture from tensor names: \(what); put the model's config.json beside it or give it as MODEL")
    }

    /// The block index of a name (`model.layers.7.`, `transformer.h.7.`, `blk.7.`), if any.
    static func layerIndex(_ parts: [Substring]) -> Int? {
        for (k, p) in parts.enumerated() where ["layers", "h", "blk", "block", "blocks"].contains(p) && k + 1 < parts.count {
            if let n = Int(parts[k + 1]), n >= 0, n < 1 << 20 { return n }
        }
        return nil
    }

    /// The role a tensor's name gives it.
    static func role(_ name: String, shape: [Int]) -> PlanTensor.Role {
        let parts = name.split(separator: ".")
        let set = Set(parts)
        if shape.count == 2 {
            if !set.isDisjoint(with: ["embed_tokens", "wte", "word_embeddings", "tok_embeddings", "token_embd", "shared", "embed_in"]) { return .embedding }
            if !set.isDisjoint(with: ["wpe", "embed_positions", "position_embeddings"]) { return .positionEmbedding }
            if set.contains("lm_head") || set.contains("embed_out") || name == "output.weight" { return .outputHead }
        }
        guard shape.count == 2, name.hasByteSuffix(".weight"), layerIndex(parts) != nil else { return .other }
        let module = parts.count >= 2 ? parts[parts.count - 2] : ""
        let parent = parts.count >= 3 ? parts[parts.count - 3] : ""
        switch module {
        case "q_proj", "attn_q", "q": return .linear(.q)
        case "k_proj", "attn_k", "k": return .linear(.k)
        case "v_proj", "attn_v", "v": return .linear(.v)
        case "o_proj", "attn_output", "o": return .linear(.o)
        case "c_attn", "attn_qkv", "qkv_proj", "query_key_value": return .linear(.qkv)
        case "gate_proj", "ffn_gate", "wi_0", "w1": return .linear(.gate)
        case "up_proj", "ffn_up", "c_fc", "wi_1", "wi", "w3": return .linear(.up)
        case "down_proj", "ffn_down", "wo", "w2": return .linear(.down)
        case "c_proj": return .linear(parent == "attn" ? .o : .down)
        default: return .other
        }
    }

    static func ggufInt(_ model: Model, _ key: String) -> Int? {
        guard let v = model.metadata.first(where: { $0.0 == key })?.1, case let .number(text) = v.json,
              let n = Int(text), n > 0 else { return nil }
        return n
    }

    static func ggufString(_ model: Model, _ key: String) -> String? {
        guard let v = model.metadata.first(where: { $0.0 == key })?.1, case let .string(s) = v.json else { return nil }
        return s
    }

    static func infer(_ model: Model) throws -> (PlanArchitecture, [PlanTensor]) {
        let names = model.tensors.map(\.name)
        if names.contains(where: { $0.hasBytePrefix("encoder.") || $0.contains(".encoder.") }) {
            throw fail(model, "an encoder-decoder model needs its config.json")
        }
        guard let embed = model.tensors.first(where: { role($0.name, shape: $0.shape) == .embedding }) else {
            throw fail(model, "no token embedding (embed_tokens, wte, token_embd, ...)")
        }
        let h = embed.shape[1], vocab = embed.shape[0]
        // GPT-2 stores Conv1D weights [in, out]: its c_attn is [h, 3h].
        let conv1D = model.tensors.contains { t in
            t.name.hasByteSuffix("c_attn.weight") && t.shape.count == 2 && t.shape[0] == h && t.shape[1] != h
        }
        var tensors: [PlanTensor] = []
        var layers = 0
        for t in model.tensors {
            let r = role(t.name, shape: t.shape)
            let layer = layerIndex(t.name.split(separator: "."))
            if let layer { layers = max(layers, layer + 1) }
            if case .linear = r, conv1D {
                tensors.append(PlanTensor(name: t.name, shape: t.shape, role: r, inFeatures: t.shape[0], outFeatures: t.shape[1], layer: layer))
            } else {
                tensors.append(PlanTensor(name: t.name, shape: t.shape, role: r, layer: layer))
            }
        }
        guard layers > 0 else { throw fail(model, "no numbered blocks (model.layers.N, transformer.h.N, blk.N)") }
        func rows(_ k: LinearKind) -> Int? { tensors.first { $0.linearKind == k }?.outFeatures }
        var qDim = rows(.q), kvDim = rows(.k)
        if qDim == nil, let fused = rows(.qkv) {
            // A fused projection: q is as wide as the model; k and v share the rest.
            qDim = h
            kvDim = (fused - h) / 2
        }
        guard let qDim, let kvDim, kvDim > 0, let inter = rows(.up) ?? rows(.gate) else {
            throw fail(model, "no query, key or MLP projection found")
        }
        var assumptions: [String] = []
        let arch = ggufString(model, "general.architecture")
        var headDim: Int
        var source = PlanArchitecture.Source.tensorNames
        if let arch, let d = ggufInt(model, arch + ".attention.key_length") {
            headDim = d
            source = .ggufMetadata
        } else if let arch, let heads = ggufInt(model, arch + ".attention.head_count"), qDim % heads == 0 {
            headDim = qDim / heads
            source = .ggufMetadata
        } else {
            headDim = qDim % 128 == 0 && kvDim % 128 == 0 ? 128 : 64
            assumptions.append("head dimension assumed \(headDim) (the shapes do not say)")
        }
        if qDim % headDim != 0 || kvDim % headDim != 0 { headDim = 1; assumptions.append("head dimension unknown: attention scores counted per element") }
        var maxPositions = arch.flatMap { ggufInt(model, $0 + ".context_length") }
        let positions = tensors.first { $0.role == .positionEmbedding }?.shape[0] ?? 0
        if maxPositions == nil && positions > 0 { maxPositions = positions }
        assumptions.append("no dropout assumed")
        let modelType = arch ?? (conv1D ? "gpt2" : names.contains(where: { $0.hasByteSuffix("c_attn.weight") }) ? "gpt_bigcode" : "llama")
        let a = PlanArchitecture(
            modelType: modelType, hidden: h, layers: layers, heads: qDim / headDim, kvHeads: kvDim / headDim, headDim: headDim,
            intermediate: inter, vocab: vocab, tiedEmbeddings: !tensors.contains { $0.role == .outputHead },
            gatedMLP: rows(.gate) != nil, dropout: false, maxPositions: maxPositions, learnedPositions: positions,
            source: source, assumptions: assumptions)
        return (a, tensors)
    }
}
