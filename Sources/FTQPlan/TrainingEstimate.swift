/// One line of a training estimate: a named byte count and the formula behind it.
public struct PlanLine: Sendable, Equatable {
    /// The JSON name (`weights`, `gradients`, ...).
    public var key: String
    /// The printed name.
    public var label: String
    public var bytes: Double
    /// The formula, with this model's numbers.
    public var formula: String
}

/// Peak GPU memory of one training step, per GPU (formats/plan.md, "Training").
public struct TrainingEstimate: Sendable {
    public var settings: PlanSettings
    public var totalParameters: Int
    public var trainableParameters: Int
    /// The components, each non-negative: weights, trainable_parameters, gradients,
    /// optimizer_states, activations, logits, framework_overhead, and with ZeRO-3
    /// zero3_gather.
    public var lines: [PlanLine]
    /// Bytes counted in two lines that are never alive together (with gradient checkpointing,
    /// the recomputed layer and the logits): total = sum of the lines - overlap.
    public var overlap: Double
    public var total: Double
    /// The estimate under the assumptions that give the least memory, and the most.
    public var low: Double
    public var high: Double
    /// Optimizer state a paged optimizer lets the driver move to CPU memory.
    public var pageable: Double
    /// What the estimate assumes, in words, including what the range spans.
    public var assumptions: [String]

    /// Bytes that must stay on the GPU: the total less pageable optimizer state.
    public var resident: Double { total - pageable }

    /// A line's bytes (0 when absent).
    public func bytes(_ key: String) -> Double { lines.first { $0.key == key }?.bytes ?? 0 }
}

/// The training estimator: pure arithmetic on a ``PlanModel`` (formats/plan.md, "Training").
public enum TrainingEstimator {
    /// Framework overhead: CUDA context and allocator slack, point / low / high.
    public static let overhead = (point: 1.0e9, low: 0.5e9, high: 1.5e9)
    /// The activation coefficients' uncertainty: x0.9 (low) and x1.1 (high).
    public static let activationSpread = 0.1
    /// The caching allocator's reserve as the driver sees it: the high end adds 10%.
    public static let allocatorReserve = 0.1

    enum Scenario { case point, low, high }

    /// The estimate for `model` trained as `settings` says.
    public static func estimate(_ model: PlanModel, _ settings: PlanSettings) -> TrainingEstimate {
        var e = compute(model, settings, .point)
        e.low = compute(model, settings, .low).total
        e.high = compute(model, settings, .high).total
        return e
    }

    /// The trainable tensors' element counts and shapes: the model's for full fine-tuning,
    /// the LoRA A (r x in) and B (out x r) matrices otherwise.
    static func trainableShapes(_ model: PlanModel, _ s: PlanSettings) -> [[Int]] {
        if s.method == .full { return model.tensors.map(\.shape) }
        var out: [[Int]] = []
        for t in model.tensors {
            guard let k = t.linearKind, k.isTargeted(by: s.loraTargets) else { continue }
            out.append([s.loraRank, t.inFeatures])
            out.append([t.outFeatures, s.loraRank])
        }
        return out
    }

    /// Optimizer state bytes of one trainable tensor, master copy excluded.
    static func stateBytes(_ shape: [Int], _ s: PlanSettings) -> Double {
        let n = Double(shape.reduce(1, *))
        let pure = s.precision == .pureBF16
        switch s.optimizer {
        case .adamw: return n * (pure ? 4 : 8)
        case .pagedAdamw: return n * 8
        case .adamw8bit, .pagedAdamw8bit:
            // bitsandbytes keeps tensors under 4096 elements in 32-bit state; otherwise two
            // uint8 moments with one float32 absmax per block of 256.
            return n < 4096 ? n * 8 : n * (2 + 2 * 4 / 256)
        case .sgd: return n * (pure ? 2 : 4)
        case .adafactor:
            let f: Double = pure ? 2 : 4
            return shape.count >= 2 ? f * Double(shape[0] + shape[1...].reduce(1, *)) : f * n
        }
    }

    /// Bytes a tensor takes frozen: NF4 for QLoRA's projections, the weight dtype otherwise.
    static func frozenBytes(_ t: PlanTensor, _ s: PlanSettings, fp32Unquantized: Bool) -> Double {
        if s.method == .qlora, t.linearKind != nil { return Double(InferenceFormat.nf4Bytes(elements: t.elements)) }
        let b = s.method == .qlora && fp32Unquantized ? 4 : s.precision.weightBytes
        return Double(t.elements * b)
    }

    /// Activation bytes per token of one block, at 16 bits, without the attention scores:
    /// (coefficient x h) in Korthikanti et al.'s terms. `cross`: a T5 decoder block.
    static func blockBytesPerToken(_ a: PlanArchitecture, cross: Bool) -> (attention: Double, mlp: Double, norms: Double) {
        let h = Double(a.hidden), q = Double(a.queryDim), kv = Double(a.kvDim), I = Double(a.intermediate)
        let drop = a.dropout ? h : 0
        // Input of the q/k/v projections, Q, K and V, input of the output projection, dropout mask.
        let attention = 2 * h + 2 * q + 4 * kv + 2 * q + drop
        // Input, then per intermediate element: gate and up outputs, activation output and
        // their product (gated), or the first projection's output and the activation (GeLU).
        let mlp = 2 * h + (a.gatedMLP ? 8 : 4) * I + drop
        return (cross ? 2 * attention : attention, mlp, (cross ? 6 : 4) * h)
    }

    static func compute(_ model: PlanModel, _ s: PlanSettings, _ sc: Scenario) -> TrainingEstimate {
        let a = model.architecture
        let P = model.parameterCount
        let wb = Double(s.precision.weightBytes)
        let dt = s.precision.dtypeName
        let n = Double(max(s.gpus, 1))
        let highQLoRA = sc == .high && s.method == .qlora
        var lines: [PlanLine] = []
        var assumptions: [String] = []
        func fmt(_ v: Int) -> String { PlanText.count(v) }

        // Weights.
        var weights = model.tensors.reduce(0.0) { $0 + frozenBytes($1, s, fp32Unquantized: highQLoRA) }
        var weightFormula: String
        switch s.method {
        case .full, .lora: weightFormula = "P \(fmt(P)) × \(Int(wb)) B (\(dt))"
        case .qlora:
            let linear = model.tensors.filter { $0.linearKind != nil }.reduce(0) { $0 + $1.elements }
            weightFormula = "\(fmt(linear)) projection weights in NF4 with double quantization (\(PlanText.decimal(InferenceFormat.nf4.bitsPerWeight())) bits) + \(fmt(P - linear)) others × \(Int(wb)) B (\(dt))"
        }
        // Trainable parameters.
        let shapes = trainableShapes(model, s)
        let Pt = shapes.reduce(0) { $0 + $1.reduce(1, *) }
        var adapters = s.method == .full ? 0 : Double(Pt) * wb
        let adapterFormula = s.method == .full
            ? "full fine-tuning trains all \(fmt(P)) weights above"
            : "Pt = Σ r·(in + out) over \(shapes.count / 2) projections, r = \(s.loraRank): \(fmt(Pt)) × \(Int(wb)) B (\(dt))"
        // Gradients.
        let largest = shapes.map { $0.reduce(1, *) }.max() ?? 0
        var gradients = s.optimizerInBackward ? Double(largest) * wb : Double(Pt) * wb
        var gradientFormula = s.optimizerInBackward
            ? "optimizer in backward: one tensor's gradient at a time, the largest \(fmt(largest)) × \(Int(wb)) B"
            : "Pt \(fmt(Pt)) × \(Int(wb)) B (\(dt))"
        // Optimizer states.
        let states = shapes.reduce(0.0) { $0 + stateBytes($1, s) }
        let master = Double(Pt * s.precision.masterBytes)
        var optimizer = states + master
        var pageable = s.optimizer.isPaged ? states : 0
        var optimizerFormula: String
        let perParam = Pt > 0 ? states / Double(Pt) : 0
        switch s.optimizer {
        case .adamw: optimizerFormula = "AdamW: 2 moments × \(s.precision == .pureBF16 ? "2 B (bf16)" : "4 B (fp32)")"
        case .pagedAdamw: optimizerFormula = "paged AdamW: 2 moments × 4 B (fp32), pageable to CPU"
        case .adamw8bit, .pagedAdamw8bit:
            optimizerFormula = "8-bit AdamW: 2 × (1 B + 4 B per 256) (8 B under 4096 elements)" + (s.optimizer.isPaged ? ", pageable to CPU" : "")
        case .sgd: optimizerFormula = "SGD momentum: \(s.precision == .pureBF16 ? "2" : "4") B"
        case .adafactor: optimizerFormula = "Adafactor: factored second moment, rows + columns per matrix"
        }
        optimizerFormula = "Pt × " + PlanText.decimal(perParam) + " B (" + optimizerFormula + ")"
        if master > 0 { optimizerFormula += " + Pt × 4 B fp32 master copy" }
        // ZeRO.
        var gather = 0.0
        if s.zeroStage >= 1 {
            optimizer /= n
            pageable /= n
            optimizerFormula += ", ÷ \(s.gpus) GPUs (ZeRO-\(s.zeroStage))"
        }
        if s.zeroStage >= 2 {
            gradients /= n
            gradientFormula += ", ÷ \(s.gpus) GPUs"
        }
        if s.zeroStage >= 3 {
            weights /= n
            adapters /= n
            weightFormula += ", ÷ \(s.gpus) GPUs"
            var perLayer: [Int: Double] = [:]
            for t in model.tensors { if let l = t.layer { perLayer[l, default: 0] += frozenBytes(t, s, fp32Unquantized: highQLoRA) } }
            gather = 2 * (perLayer.values.max() ?? 0)
        }

        // Activations.
        let actFactor = Double(s.precision.activationBytes) / 2 * (highQLoRA ? 2 : 1)
        let spread = sc == .low ? 1 - activationSpread : sc == .high ? 1 + activationSpread : 1
        let tokens = Double(s.batch) * Double(s.sequence)
        let seq = Double(s.sequence)
        let dropScores = s.flashAttention || sc == .low
        let scorePerToken = dropScores ? 0 : 5 * Double(a.heads) * seq
        let dec = blockBytesPerToken(a, cross: a.isEncoderDecoder)
        let enc = blockBytesPerToken(a, cross: false)
        let decCoef = dec.attention + dec.mlp + dec.norms
        let encCoef = enc.attention + enc.mlp + enc.norms
        let decLayer = tokens * (decCoef + scorePerToken * (a.isEncoderDecoder ? 2 : 1)) * Double(s.precision.activationBytes) / 2 * spread
        let encLayer = tokens * (encCoef + scorePerToken) * Double(s.precision.activationBytes) / 2 * spread
        let h = Double(a.hidden)
        let c = decCoef / h
        let blockText = a.isEncoderDecoder
            ? "decoder \(a.layers) × s·b·h·(\(PlanText.decimal(c))\(s.flashAttention ? "" : " + 10·a·s/h")) + encoder \(a.encoderLayers) × s·b·h·(\(PlanText.decimal(encCoef / h))\(s.flashAttention ? "" : " + 5·a·s/h"))"
            : "\(a.layers) × s·b·h·(\(PlanText.decimal(c))\(s.flashAttention ? "" : " + 5·a·s/h"))"
        let units = "s = \(s.sequence), b = \(s.batch), h = \(a.hidden), a = \(a.heads)"
        var activations: Double
        var transient = 0.0
        var activationFormula: String
        if s.gradientCheckpointing {
            let stored = Double(a.layers + a.encoderLayers) * 2 * tokens * h * actFactor
            transient = max(decLayer, a.isEncoderDecoder ? encLayer : 0)
            activations = stored + transient
            activationFormula = "checkpoints \(a.layers + a.encoderLayers) × \(Int(2 * actFactor))·s·b·h = \(PlanText.gb(stored)) + one recomputed block s·b·h·(\(PlanText.decimal(c))\(s.flashAttention ? "" : " + 5·a·s/h")) = \(PlanText.gb(transient)); \(units)"
        } else {
            activations = Double(a.layers) * decLayer + Double(a.encoderLayers) * encLayer
            activationFormula = blockText + " B; \(units)" + (s.precision == .fp32 ? ", × 2 for fp32" : "")
        }
        // Logits (decoder tokens).
        let perLogitRange = s.loss.bytesPerLogit
        let perLogit = sc == .low ? perLogitRange.low : sc == .high ? perLogitRange.high : perLogitRange.point
        let logits = tokens * Double(a.vocab) * perLogit
        let logitWhat = s.loss == .chunked
            ? "chunked loss: the 16-bit logits, the fp32 work one chunk at a time"
            : "unfused loss: fp32 log-softmax saved for backward, its gradient and log_softmax's backward output, 3 × 4 B"
        let logitFormula = "b·s·V × \(PlanText.decimal(perLogit)) B (\(logitWhat)) = \(s.batch)·\(s.sequence)·\(a.vocab)·\(PlanText.decimal(perLogit))"
        let overlap = s.gradientCheckpointing ? min(transient, logits) : 0
        let overheadBytes = sc == .low ? overhead.low : sc == .high ? overhead.high : overhead.point

        lines.append(PlanLine(key: "weights", label: "weights", bytes: weights, formula: weightFormula))
        lines.append(PlanLine(key: "trainable_parameters", label: "trainable parameters", bytes: adapters, formula: adapterFormula))
        lines.append(PlanLine(key: "gradients", label: "gradients", bytes: gradients, formula: gradientFormula))
        lines.append(PlanLine(key: "optimizer_states", label: "optimizer states", bytes: optimizer, formula: optimizerFormula))
        lines.append(PlanLine(key: "activations", label: "activations", bytes: activations, formula: activationFormula))
        lines.append(PlanLine(key: "logits", label: "logits", bytes: logits, formula: logitFormula))
        if s.zeroStage >= 3 {
            lines.append(PlanLine(key: "zero3_gather", label: "ZeRO-3 gathered blocks", bytes: gather,
                                  formula: "2 blocks' full weights (the one computing and the one prefetched)"))
        }
        lines.append(PlanLine(key: "framework_overhead", label: "framework overhead", bytes: overheadBytes,
                              formula: "CUDA context and allocator slack (0.5-1.5 GB)"))
        var total = lines.reduce(0) { $0 + $1.bytes } - overlap
        if sc == .high { total *= 1 + allocatorReserve }

        assumptions.append("activations per Korthikanti et al. with this model's shapes: \(PlanText.decimal(c))·s·b·h bytes per block (GPT-3's shapes give 34)\(s.flashAttention ? "" : ", plus 5·a·s² per block for attention scores")")
        switch s.loss {
        case .chunked:
            assumptions.append("chunked loss (--loss chunked): 2 B per logit, the fp32 work fused one chunk at a time as torch.compile does it; the high end assumes no compile, every chunk's fp32 log-softmax saved for the backward pass (6 B)")
        case .unfused:
            assumptions.append("unfused loss (--loss unfused, as transformers' Trainer computes it): 12 B per logit at the start of the backward pass (fp32 log-softmax, its gradient, log_softmax's backward output); the low end assumes torch.compile fuses part of it (10 B)")
        }
        if !s.flashAttention { assumptions.append("attention scores stored (no --flash-attention); the low end assumes PyTorch's SDPA picks a kernel that stores none") }
        if s.gradientCheckpointing { assumptions.append("with gradient checkpointing the recomputed block and the logits are never alive together: the smaller is subtracted") }
        assumptions.append("framework overhead 1.0 GB (0.5-1.5 GB); activations ±10%; the high end adds 10% for the caching allocator's reserve")
        if s.method == .qlora { assumptions.append("the high end keeps non-quantized weights and the residual stream in fp32, as PEFT's prepare_model_for_kbit_training leaves them") }
        if s.optimizer.isPaged { assumptions.append("paged optimizer state (\(PlanText.gb(pageable))) moves to CPU memory when the GPU is full: slower, but it fits") }
        if a.isEncoderDecoder { assumptions.append("encoder input and decoder target both \(s.sequence) tokens") }
        if s.zeroStage > 0 { assumptions.append("per GPU, each with a micro-batch of \(s.batch)") }

        return TrainingEstimate(settings: s, totalParameters: P, trainableParameters: Pt, lines: lines, overlap: overlap,
                                total: total, low: total, high: total, pageable: pageable, assumptions: assumptions)
    }
}
