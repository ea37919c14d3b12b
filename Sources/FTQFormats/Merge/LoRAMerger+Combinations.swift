import FTQCore

/// Which combinations of adapters, bases and options ftq merges, and the refusals of the others
/// (formats/lora-merge.md, "Several adapters" and "DoRA").
extension LoRAMerger {
    /// modules_to_save with several weighted adapters, as PEFT's add_weighted_adapter handles it:
    /// two adapters that save the same module are refused (PEFT refuses them: "Cannot add weighted
    /// adapters if they target the same module with modules_to_save"); otherwise the combined
    /// adapter uses none of the trained copies (it takes the first adapter's modules_to_save list
    /// and makes fresh copies of the base's modules), so the base's tensors are kept.
    func checkWeightedReplacements() throws {
        guard weights != nil else { return }
        var seen: [ExactName: Int] = [:]
        for (j, adapter) in adapters.enumerated() {
            for (name, _) in adapter.replacements {
                if let first = seen[ExactName(name)], first != j {
                    throw FTQError.invalid("merge.adapter-config", file: adapter.configPath,
                        "adapters \(adapters[first].path) and \(adapter.path) both save \"\(name)\" (modules_to_save); PEFT's add_weighted_adapter refuses to combine them, and so does ftq")
                }
                seen[ExactName(name)] = j
            }
        }
    }

    /// The base tensors whose modules_to_save copies a weighted combination leaves out (the base's
    /// values are kept, as PEFT keeps them), for the report.
    public var ignoredReplacements: [String] {
        guard weights != nil else { return [] }
        return adapters.flatMap { $0.replacements.map(\.name) }
    }

    /// DoRA adapters merge one at a time, from float32 factors, into F32, F16 and BF16 bases
    /// (safetensors or GGUF, with or without fan_in_fan_out), bitsandbytes NF4, FP4 and int8
    /// bases, and quantized GGUF tensors (formats/lora-merge.md, "DoRA"); the rest is refused.
    func checkDoRA() throws {
        guard let a = adapters.first(where: \.useDoRA) else { return }
        func refuse(_ m: String) -> FTQError { FTQError.invalid("merge.adapter-config", file: a.configPath, m) }
        if weights != nil {
            // PEFT's add_weighted_adapter does not combine DoRA magnitudes: the combined adapter
            // copies the first adapter's config, so it is a DoRA adapter only when the first one
            // is, and its magnitudes are then initialized again from the base weights (with the
            // first adapter's init_lora_weights), the trained ones being dropped.
            throw refuse("DoRA adapters (use_dora) cannot be combined with --weights: PEFT's add_weighted_adapter drops their trained magnitudes (the combined adapter's are initialized again from the base), so ftq refuses the combination; merge them one at a time")
        }
        for m in a.modules where m.a.type.plainDType != .F32 || m.b.type.plainDType != .F32 {
            throw refuse("module \"\(m.name)\": DoRA adapters with \(m.a.type.name) lora_A/lora_B weights are not supported (PEFT saves float32)")
        }
    }
}
