/// The projections LoRA can target (`--lora-targets`), by their role in a block.
public enum LinearKind: String, CaseIterable, Sendable, Comparable {
    case q, k, v, o, gate, up, down
    /// A fused query-key-value projection (GPT-2 and StarCoder `c_attn`, GGUF `attn_qkv`): one
    /// module, targeted when any of q, k or v is.
    case qkv

    /// The names `--lora-targets` accepts, in order.
    public static let targetNames = ["q", "k", "v", "o", "gate", "up", "down"]

    /// Every projection (`--lora-targets all-linear`).
    public static let allLinear: Set<LinearKind> = [.q, .k, .v, .o, .gate, .up, .down]

    public static func < (a: LinearKind, b: LinearKind) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// Whether a LoRA target set selects this projection.
    public func isTargeted(by targets: Set<LinearKind>) -> Bool {
        self == .qkv ? !targets.isDisjoint(with: [.q, .k, .v]) : targets.contains(self)
    }
}

/// One tensor of a model as planning sees it: its shape and what it does.
public struct PlanTensor: Sendable, Equatable {
    /// What a tensor is, for deciding how each method stores and trains it.
    public enum Role: Sendable, Equatable {
        /// A projection inside a block: LoRA's targets, and what QLoRA and bitsandbytes quantize.
        case linear(LinearKind)
        /// Token embedding.
        case embedding
        /// Learned absolute position embedding.
        case positionEmbedding
        /// The untied output head (lm_head).
        case outputHead
        /// Norm weights, biases, relative-position tables: small, kept in 16 bits by every method.
        case other
    }

    public var name: String
    /// Row-major shape, outermost first.
    public var shape: [Int]
    public var role: Role
    /// Input and output features of a linear projection (GPT-2 stores its Conv1D weights
    /// transposed, so the shape alone does not say).
    public var inFeatures: Int
    public var outFeatures: Int
    /// Block index (decoder blocks first, then encoder blocks offset by the decoder's count),
    /// or nil outside the blocks.
    public var layer: Int?

    public init(name: String, shape: [Int], role: Role, inFeatures: Int? = nil, outFeatures: Int? = nil, layer: Int? = nil) {
        self.name = name
        self.shape = shape
        self.role = role
        self.inFeatures = inFeatures ?? (shape.count == 2 ? shape[1] : shape.last ?? 1)
        self.outFeatures = outFeatures ?? (shape.count == 2 ? shape[0] : 1)
        self.layer = layer
    }

    /// Number of elements.
    public var elements: Int { shape.reduce(1, *) }

    /// The linear kind, if the tensor is a projection.
    public var linearKind: LinearKind? {
        if case let .linear(k) = role { return k }
        return nil
    }
}

extension PlanArchitecture {
    /// The tensors a model of this architecture has, under Hugging Face names, in file order.
    /// Their element counts sum to the model's published parameter count.
    public func tensors() -> [PlanTensor] {
        switch modelType {
        case "gpt2", "gpt_bigcode": return gptTensors()
        case "t5": return t5Tensors()
        default: return llamaTensors()
        }
    }

    func llamaTensors() -> [PlanTensor] {
        let h = hidden, q = queryDim, kv = kvDim, I = intermediate
        var out = [PlanTensor(name: "model.embed_tokens.weight", shape: [vocab, h], role: .embedding)]
        for i in 0..<layers {
            let p = "model.layers.\(i)."
            func lin(_ n: String, _ k: LinearKind, _ o: Int, _ inF: Int, bias: Bool) {
                out.append(PlanTensor(name: p + n + ".weight", shape: [o, inF], role: .linear(k), layer: i))
                if bias { out.append(PlanTensor(name: p + n + ".bias", shape: [o], role: .other, layer: i)) }
            }
            out.append(PlanTensor(name: p + "input_layernorm.weight", shape: [h], role: .other, layer: i))
            lin("self_attn.q_proj", .q, q, h, bias: attentionBias)
            lin("self_attn.k_proj", .k, kv, h, bias: attentionBias)
            lin("self_attn.v_proj", .v, kv, h, bias: attentionBias)
            // Qwen2's o_proj has no bias; Llama's attention_bias covers o_proj too.
            lin("self_attn.o_proj", .o, h, q, bias: attentionBias && modelType != "qwen2")
            out.append(PlanTensor(name: p + "post_attention_layernorm.weight", shape: [h], role: .other, layer: i))
            lin("mlp.gate_proj", .gate, I, h, bias: mlpBias)
            lin("mlp.up_proj", .up, I, h, bias: mlpBias)
            lin("mlp.down_proj", .down, h, I, bias: mlpBias)
        }
        out.append(PlanTensor(name: "model.norm.weight", shape: [h], role: .other))
        if !tiedEmbeddings { out.append(PlanTensor(name: "lm_head.weight", shape: [vocab, h], role: .outputHead)) }
        return out
    }

    func gptTensors() -> [PlanTensor] {
        let h = hidden, I = intermediate, qkv = queryDim + 2 * kvDim
        // GPT-2's Conv1D weights are stored [in, out]; gpt_bigcode's nn.Linear [out, in].
        let conv1D = modelType == "gpt2"
        var out = [PlanTensor(name: "transformer.wte.weight", shape: [vocab, h], role: .embedding)]
        if learnedPositions > 0 {
            out.append(PlanTensor(name: "transformer.wpe.weight", shape: [learnedPositions, h], role: .positionEmbedding))
        }
        for i in 0..<layers {
            let p = "transformer.h.\(i)."
            func lin(_ n: String, _ k: LinearKind, _ o: Int, _ inF: Int) {
                out.append(PlanTensor(name: p + n + ".weight", shape: conv1D ? [inF, o] : [o, inF], role: .linear(k),
                                      inFeatures: inF, outFeatures: o, layer: i))
                out.append(PlanTensor(name: p + n + ".bias", shape: [o], role: .other, layer: i))
            }
            out.append(PlanTensor(name: p + "ln_1.weight", shape: [h], role: .other, layer: i))
            out.append(PlanTensor(name: p + "ln_1.bias", shape: [h], role: .other, layer: i))
            lin("attn.c_attn", .qkv, qkv, h)
            lin("attn.c_proj", .o, h, queryDim)
            out.append(PlanTensor(name: p + "ln_2.weight", shape: [h], role: .other, layer: i))
            out.append(PlanTensor(name: p + "ln_2.bias", shape: [h], role: .other, layer: i))
            lin("mlp.c_fc", .up, I, h)
            lin("mlp.c_proj", .down, h, I)
        }
        out.append(PlanTensor(name: "transformer.ln_f.weight", shape: [h], role: .other))
        out.append(PlanTensor(name: "transformer.ln_f.bias", shape: [h], role: .other))
        if !tiedEmbeddings { out.append(PlanTensor(name: "lm_head.weight", shape: [vocab, h], role: .outputHead)) }
        return out
    }

    /// T5: the relative-position table sits in each stack's first block; 32 buckets unless the
    /// config says otherwise (ftq reads the default).
    func t5Tensors(buckets: Int = 32) -> [PlanTensor] {
        let h = hidden, inner = queryDim, ff = intermediate
        var out = [PlanTensor(name: "shared.weight", shape: [vocab, h], role: .embedding)]
        func attention(_ p: String, _ layer: Int, relative: Bool) {
            for (n, k) in [("q", LinearKind.q), ("k", .k), ("v", .v)] {
                out.append(PlanTensor(name: p + n + ".weight", shape: [inner, h], role: .linear(k), layer: layer))
            }
            out.append(PlanTensor(name: p + "o.weight", shape: [h, inner], role: .linear(.o), layer: layer))
            if relative { out.append(PlanTensor(name: p + "relative_attention_bias.weight", shape: [buckets, heads], role: .other, layer: layer)) }
        }
        func feedForward(_ p: String, _ layer: Int) {
            if gatedMLP {
                out.append(PlanTensor(name: p + "DenseReluDense.wi_0.weight", shape: [ff, h], role: .linear(.gate), layer: layer))
                out.append(PlanTensor(name: p + "DenseReluDense.wi_1.weight", shape: [ff, h], role: .linear(.up), layer: layer))
            } else {
                out.append(PlanTensor(name: p + "DenseReluDense.wi.weight", shape: [ff, h], role: .linear(.up), layer: layer))
            }
            out.append(PlanTensor(name: p + "DenseReluDense.wo.weight", shape: [h, ff], role: .linear(.down), layer: layer))
            out.append(PlanTensor(name: p + "layer_norm.weight", shape: [h], role: .other, layer: layer))
        }
        for i in 0..<encoderLayers {
            let p = "encoder.block.\(i).layer."
            let layer = layers + i
            attention(p + "0.SelfAttention.", layer, relative: i == 0)
            out.append(PlanTensor(name: p + "0.layer_norm.weight", shape: [h], role: .other, layer: layer))
            feedForward(p + "1.", layer)
        }
        out.append(PlanTensor(name: "encoder.final_layer_norm.weight", shape: [h], role: .other))
        for i in 0..<layers {
            let p = "decoder.block.\(i).layer."
            attention(p + "0.SelfAttention.", i, relative: i == 0)
            out.append(PlanTensor(name: p + "0.layer_norm.weight", shape: [h], role: .other, layer: i))
            attention(p + "1.EncDecAttention.", i, relative: false)
            out.append(PlanTensor(name: p + "1.layer_norm.weight", shape: [h], role: .other, layer: i))
            feedForward(p + "2.", i)
        }
        out.append(PlanTensor(name: "decoder.final_layer_norm.weight", shape: [h], role: .other))
        if !tiedEmbeddings { out.append(PlanTensor(name: "lm_head.weight", shape: [vocab, h], role: .outputHead)) }
        return out
    }
}
