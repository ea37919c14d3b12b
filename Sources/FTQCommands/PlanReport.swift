import FTQCore
import FTQPlan

/// The output of `ftq plan`, as text and JSON (formats/plan.md, "Output").
struct PlanReport {
    var path: String
    var model: PlanModel
    var settings: PlanSettings
    var estimate: TrainingEstimate
    var gpuBytes: Int?
    var changes: [PlanChange]
    var inference: InferenceEstimate
    var warnings: [String]

    static func bytes(_ v: Double) -> Int { Int(v.rounded()) }

    var settingsText: String {
        let s = settings
        var parts = [s.method.rawValue]
        if s.method != .full { parts[0] += " (rank \(s.loraRank), \(s.loraTargetsText))" }
        parts.append(s.optimizer.rawValue)
        parts.append(s.precision == .fp16 || s.precision == .bf16 ? "\(s.precision.rawValue) mixed precision" : s.precision.rawValue)
        parts.append("batch \(s.batch) × \(s.sequence) tokens")
        if s.gradientCheckpointing { parts.append("gradient checkpointing") }
        if s.flashAttention { parts.append("FlashAttention") }
        if s.optimizerInBackward { parts.append("optimizer in backward") }
        parts.append("\(s.loss.rawValue) loss")
        if s.zeroStage > 0 { parts.append("ZeRO-\(s.zeroStage) on \(s.gpus) GPUs") } else if s.gpus > 1 { parts.append("\(s.gpus) GPUs") }
        return parts.joined(separator: ", ")
    }

    var architectureText: String {
        let a = model.architecture
        var t = "\(a.modelType) (from \(a.source.rawValue)): "
        t += a.isEncoderDecoder ? "\(a.encoderLayers) encoder + \(a.layers) decoder layers" : "\(a.layers) layers"
        t += ", hidden \(a.hidden), \(a.heads) heads"
        if a.kvHeads != a.heads { t += " (\(a.kvHeads) KV)" }
        t += " × \(a.headDim), MLP \(a.intermediate)\(a.gatedMLP ? " gated" : ""), vocabulary \(a.vocab)"
        t += a.tiedEmbeddings ? ", tied embeddings" : ""
        if let m = a.maxPositions { t += ", \(m) positions" }
        return t
    }

    func text() -> String {
        let e = estimate
        var out = ""
        out += "model:         \(TerminalText.escaped(path, limit: 1000))\n"
        out += "architecture:  \(TerminalText.escaped(architectureText, limit: 1000))\n"
        out += "parameters:    \(PlanText.count(e.totalParameters))"
        if let h = model.headerParameters {
            out += " (header: " + h.map { "\(TerminalText.escaped($0.dtype, limit: 40)) \(PlanText.count($0.count))" }.joined(separator: ", ") + ")"
        }
        out += "\n"
        out += "training:      \(settingsText)\n"
        let share = e.totalParameters > 0 ? Double(e.trainableParameters) / Double(e.totalParameters) * 100 : 0
        out += "trainable:     \(PlanText.count(e.trainableParameters)) parameters (\(PlanText.decimal(share))%)\n\n"

        out += "Peak memory per GPU\n"
        var rows = e.lines.map { [$0.label, PlanText.gb($0.bytes), $0.formula] }
        if e.overlap > 0 {
            rows.append(["not alive together", "-" + PlanText.gb(e.overlap), "the recomputed block and the logits: the smaller is not counted twice"])
        }
        rows.append(["total", PlanText.gb(e.total), "range \(PlanText.gb(e.low)) to \(PlanText.gb(e.high))"])
        out += table(rows, rightAligned: [1])
        if e.pageable > 0 { out += "  of which pageable to CPU memory: \(PlanText.gb(e.pageable))\n" }
        out += "\nAssumptions:\n"
        for a in e.assumptions + model.architecture.assumptions { out += "  - \(a)\n" }

        if let g = gpuBytes {
            out += "\nGPU \(PlanText.gb(Double(g))): "
            if e.total <= Double(g) {
                out += "fits, \(PlanText.gb(Double(g) - e.total)) to spare\n"
            } else if e.resident <= Double(g) {
                out += "fits with paging: \(PlanText.gb(e.total - Double(g))) of optimizer state moves to CPU memory\n"
            } else {
                out += "does not fit (\(PlanText.gb(e.resident)) needed). Changes, cheapest first:\n"
                let rows = changes.map { [$0.change, PlanText.gb($0.estimate.total), $0.fits ? "fits" : "does not fit"] }
                out += rows.isEmpty ? "  (none found)\n" : table(rows, rightAligned: [1])
            }
        }

        out += "\nRunning: weights + KV cache for \(inference.context) tokens, batch 1 (KV cache \(PlanText.gb(Double(inference.kvCacheBytes))) = \(inference.kvFormula))\n"
        var irows: [[String]] = [["format", "bits/weight", "weights", "total"] + InferenceEstimate.devices.map(\.name)]
        for r in inference.rows {
            irows.append([r.format.name, PlanText.decimal(r.bitsPerWeight), PlanText.gb(Double(r.weightBytes)), PlanText.gb(Double(r.totalBytes))]
                         + InferenceEstimate.devices.map { r.totalBytes <= $0.bytes ? "fits" : "no" })
        }
        out += table(irows, rightAligned: [1, 2, 3])
        return out
    }

    func table(_ rows: [[String]], rightAligned: Set<Int>) -> String {
        let columns = rows.map(\.count).max() ?? 0
        var widths = [Int](repeating: 0, count: columns)
        for r in rows { for (k, c) in r.enumerated() { widths[k] = max(widths[k], c.count) } }
        var out = ""
        for r in rows {
            var parts: [String] = []
            for (k, c) in r.enumerated() {
                let pad = String(repeating: " ", count: widths[k] - c.count)
                parts.append(rightAligned.contains(k) ? pad + c : (k == r.count - 1 ? c : c + pad))
            }
            out += "  " + parts.joined(separator: "  ") + "\n"
        }
        return out
    }

    func json() -> JSONValue {
        let e = estimate, a = model.architecture, s = settings
        let arch: JSONValue = .object([
            ("model_type", .string(a.modelType)), ("source", .string(a.source.rawValue)),
            ("hidden_size", .int(a.hidden)), ("layers", .int(a.layers)), ("encoder_layers", .int(a.encoderLayers)),
            ("heads", .int(a.heads)), ("kv_heads", .int(a.kvHeads)), ("head_dim", .int(a.headDim)),
            ("intermediate_size", .int(a.intermediate)), ("gated_mlp", .bool(a.gatedMLP)), ("vocab_size", .int(a.vocab)),
            ("tied_embeddings", .bool(a.tiedEmbeddings)), ("max_positions", a.maxPositions.map { .int($0) } ?? .null),
            ("assumptions", .array(a.assumptions.map { .string($0) })),
        ])
        var params: [(String, JSONValue)] = [("total", .int(e.totalParameters)), ("trainable", .int(e.trainableParameters))]
        if let h = model.headerParameters {
            params.append(("header_by_dtype", .object(h.map { ($0.dtype, .int($0.count)) })))
        }
        let settingsJSON: JSONValue = .object([
            ("method", .string(s.method.rawValue)), ("optimizer", .string(s.optimizer.rawValue)),
            ("precision", .string(s.precision.rawValue)), ("batch", .int(s.batch)), ("seq", .int(s.sequence)),
            ("lora_rank", s.method == .full ? .null : .int(s.loraRank)),
            ("lora_targets", s.method == .full ? .null : .string(s.loraTargetsText)),
            ("gradient_checkpointing", .bool(s.gradientCheckpointing)), ("flash_attention", .bool(s.flashAttention)),
            ("optimizer_in_backward", .bool(s.optimizerInBackward)), ("loss", .string(s.loss.rawValue)),
            ("zero", .int(s.zeroStage)), ("gpus", .int(s.gpus)),
        ])
        var gpuJSON: JSONValue = .null
        if let g = gpuBytes {
            gpuJSON = .object([("bytes", .int(g)), ("fits", .bool(e.total <= Double(g))),
                               ("fits_with_paging", .bool(FitAdvisor.fits(e, gpuBytes: g)))])
        }
        let changesJSON: JSONValue = .array(changes.map { c in
            .object([("change", .string(c.change)), ("total_bytes", .int(Self.bytes(c.estimate.total))),
                     ("total_bytes_low", .int(Self.bytes(c.estimate.low))), ("total_bytes_high", .int(Self.bytes(c.estimate.high))),
                     ("fits", .bool(c.fits))])
        })
        let inferenceJSON: JSONValue = .object([
            ("context", .int(inference.context)), ("kv_cache_bytes", .int(inference.kvCacheBytes)),
            ("kv_cache_formula", .string(inference.kvFormula)),
            ("formats", .array(inference.rows.map { r in
                .object([("format", .string(r.format.name)), ("bits_per_weight", .double(r.bitsPerWeight)),
                         ("weights_bytes", .int(r.weightBytes)), ("total_bytes", .int(r.totalBytes))]
                        + InferenceEstimate.devices.map { ("fits_" + $0.name.replacingSpaces(), .bool(r.totalBytes <= $0.bytes)) })
            })),
        ])
        return .object([
            ("model", .string(path)),
            ("architecture", arch),
            ("parameters", .object(params)),
            ("settings", settingsJSON),
            ("total_bytes", .int(Self.bytes(e.total))),
            ("total_bytes_low", .int(Self.bytes(e.low))),
            ("total_bytes_high", .int(Self.bytes(e.high))),
            ("pageable_bytes", .int(Self.bytes(e.pageable))),
            ("breakdown", .object(e.lines.map { ($0.key, .int(Self.bytes($0.bytes))) })),
            ("formulas", .object(e.lines.map { ($0.key, .string($0.formula)) })),
            ("overlap_bytes", .int(Self.bytes(e.overlap))),
            ("assumptions", .array((e.assumptions + a.assumptions).map { .string($0) })),
            ("warnings", .array(warnings.map { .string($0) })),
            ("gpu", gpuJSON),
            ("changes", changesJSON),
            ("inference", inferenceJSON),
        ])
    }
}

extension String {
    /// `4 GiB` -> `4gib`, for JSON member names.
    func replacingSpaces() -> String { String(lowercased().filter { $0 != " " }) }
}
