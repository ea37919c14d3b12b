import ArgumentParser
import FTQArtifacts
import FTQCore
import FTQFormats

/// `ftq merge BASE ADAPTER -o OUT`: a PEFT LoRA adapter merged into a full-precision base.
struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Merge a PEFT LoRA adapter into a full-precision base model, as PEFT's merge_and_unload does.",
        discussion: """
        BASE is a safetensors file or a Hugging Face directory of F32, F16 or BF16 weights, or a \
        bitsandbytes checkpoint (NF4, FP4 or int8: dequantized, merged and quantized again as PEFT does); \
        ADAPTER a PEFT LoRA directory (adapter_config.json, adapter_model.safetensors; r, \
        lora_alpha, use_rslora, rank_pattern, alpha_pattern, fan_in_fan_out). Every adapted \
        weight gets (B @ A) * scaling added in float32 and rounded once to its dtype (or \
        --dtype), byte-identical to PEFT on the CPU (formats/lora-merge.md); other tensors are \
        copied. The output takes the base's form: NAME.safetensors, or a directory with the \
        base's config and tokenizer files copied. A manifest records the base's and the \
        adapter's hashes.

        Several adapters with --weights W1,W2,... give what PEFT's \
        add_weighted_adapter(adapters, weights, combination_type="cat") followed by \
        merge_and_unload gives (PEFT's "linear" type is not a linear combination of deltas).

        modules_to_save copies replace the base's tensors (with several weighted adapters, as in \
        PEFT, the base's tensors are kept). A GGUF base (llama.cpp names; q/k rows in llama.cpp's \
        order for llama; quantized tensors decoded, merged and quantized again) gives a GGUF; \
        llama.cpp's GGUF LoRA adapters merge into GGUF bases. DoRA adapters (use_dora) merge one at \
        a time into every kind of base, fan_in_fan_out included; PEFT's add_weighted_adapter drops \
        DoRA magnitudes, so DoRA adapters with --weights are refused.
        """
    )

    @Argument(help: "The base model (safetensors file or Hugging Face directory).")
    var base: String

    @Argument(help: "PEFT LoRA adapter directories, or llama.cpp GGUF LoRA adapters for a GGUF base (several need --weights).")
    var adapters: [String]

    @Option(name: .shortAndLong, help: "Output: NAME.safetensors or a directory.")
    var output: String

    @Option(help: "Write floating-point tensors as f32, f16 or bf16 (default: the base's dtypes).")
    var dtype: String?

    @Option(help: "W1,W2,...: combine several adapters with these weights, as PEFT's add_weighted_adapter(combination_type=\"cat\").")
    var weights: String?

    @Flag(help: "For a quantized base: write the merged model in full precision (its quant states' dtypes, or --dtype).")
    var dequantize = false

    @Flag(help: "For a quantized base: quantize the merged weights again with the base's codec (the default).")
    var requantize = false

    @Flag(help: "Report, per merged tensor, the error of the written values against the ideal float32 merge (always on for quantized bases).")
    var report = false

    @Flag(help: "Print what was written as JSON.")
    var json = false

    @OptionGroup var outputOptions: OutputOptions
    @OptionGroup var threads: ThreadOptions

    func run() throws {
        var w: [Double]? = nil
        if let weights {
            let parts = weights.split(separator: ",", omittingEmptySubsequences: false).map { Double($0.trimmingWhitespace()) }
            guard parts.allSatisfy({ $0 != nil && $0!.isFinite }), parts.count == adapters.count else {
                throw FTQError.usage("usage.weights", "--weights takes one finite number per adapter, separated by commas (got \"\(weights)\" for \(adapters.count) adapters)")
            }
            w = parts.map { $0! }
        }
        if adapters.count > 1 && w == nil {
            throw FTQError.usage("usage.weights", "several adapters need --weights W1,W2,... (their combination is PEFT's add_weighted_adapter with combination_type \"cat\")")
        }
        if adapters.count == 1 && w != nil {
            throw FTQError.usage("usage.weights", "--weights combines several adapters; give two or more")
        }
        let target = try parseDTypeOption(dtype)
        let model = try ModelOpener.open(base)
        let loaded = try adapters.map { try LoRAAdapter.open($0) }
        let isDirectory = PathKind.of(model.path) == .directory
        if output.hasByteSuffix(".gguf") != (model.format == .gguf) {
            throw FTQError.usage("usage.conflict", model.format == .gguf
                ? "a GGUF base gives a GGUF: give -o NAME.gguf (got \(output))"
                : "ftq merge writes the base's form: give -o NAME.safetensors or a directory (got \(output))")
        }
        let isFile = output.hasByteSuffix(".safetensors") || output.hasByteSuffix(".gguf")
        let outputTarget: OutputTarget = output.hasByteSuffix(".gguf") ? .gguf(output)
            : isFile ? .safetensorsFile(output) : .hfDirectory(output, maxShardSize: Converter.defaultMaxShardSize)
        let manifestDir = isFile ? splitPath(output).dir : output
        var command = ["ftq", "merge", ArtifactPaths.relative(base, to: manifestDir)] + adapters.map { ArtifactPaths.relative($0, to: manifestDir) }
            + ["-o", ArtifactPaths.relative(output, to: manifestDir)]
        if let w { command += ["--weights", w.map { "\($0)" }.joined(separator: ",")] }
        if let target { command += ["--dtype", target.rawValue.lowercased()] }
        if dequantize { command.append("--dequantize") }
        if report { command.append("--report") }
        let options: [(String, JSONValue)] = [
            ("output_format", .string(output.hasByteSuffix(".gguf") ? "gguf" : isFile ? "safetensors" : "hf-directory")),
            ("dtype", target.map { .string($0.rawValue) } ?? .null),
            ("adapters", .int(adapters.count)),
            ("dequantize", .bool(dequantize)),
            ("weights", w.map { .array($0.map { .double($0) }) } ?? .null),
        ]
        let inputPaths = model.files.map(\.path) + model.auxiliaryFiles + (isDirectory && !isFile ? try CompanionFiles.paths(model) : [])
            + loaded.flatMap { ($0.isGGUF ? [] : [$0.configPath]) + $0.model.files.map(\.path) }
        var opts = ConvertOptions(dtype: target, overwrite: outputOptions.force, quiet: outputOptions.quiet,
                                  digest: FileHashing.sha256, sidecars: nil)
        opts.threads = threads.count
        opts.sidecars = ArtifactPaths.manifestSidecars(command: command, options: options, inputPaths: inputPaths,
                                                       manifestDirectory: manifestDir, threads: threads.count)
        var merger = LoRAMerger(model: model, adapters: loaded, weights: w, options: opts)
        if dequantize && requantize { throw FTQError.usage("usage.conflict", "--dequantize and --requantize are exclusive") }
        if (dequantize || requantize) && !merger.baseIsQuantized && !merger.ggufBaseIsQuantized {
            throw FTQError.usage("usage.conflict", "--dequantize and --requantize apply to quantized bases; \(base) is full precision")
        }
        if target != nil && merger.baseIsQuantized && !dequantize {
            throw FTQError.usage("usage.conflict", "--dtype applies to full-precision outputs: with a quantized base, add --dequantize")
        }
        merger.dequantize = dequantize
        // Merging into a quantized base and quantizing again always reports what that adds.
        let quantizedOut = (merger.baseIsQuantized || merger.ggufBaseIsQuantized) && !dequantize
        let errors = quantizedOut || (report && model.format == .safetensors && !merger.baseIsQuantized)
            ? QuantizationReport(sourceIsGGUF: model.format == .gguf) : nil
        if report && errors == nil {
            throw FTQError.usage("usage.conflict", "--report is supported for safetensors bases and for bases that are quantized again")
        }
        merger.report = errors
        let modules = Set(loaded.flatMap { $0.modules.map(\.name) }).count
        let written = try merger.run(to: outputTarget)
        // PEFT's weighted combination uses no modules_to_save copy: say which ones were left out.
        let unused = merger.ignoredReplacements
        let models = written.filter { !$0.tensors.isEmpty }
        if json {
            let v = JSONValue.object([
                ("base", .string(base)), ("adapters", .array(adapters.map { .string($0) })),
                ("merged_modules", .int(modules)),
                ("unused_modules_to_save", .array(unused.map { .string($0) })),
                (quantizedOut ? "requantization_error" : "rounding_error", errors.map { Compare.reportJSON($0.comparison) } ?? .null),
                ("outputs", .array(written.map { w in
                    .object([("path", .string(w.path)), ("bytes", .int(w.bytes)), ("tensors", .int(w.tensors.count))])
                })),
            ])
            try printOut(JSONText.serialize(v, indent: 2) + "\n")
        } else {
            try printOut(models.map { "wrote \($0.path) (\($0.tensors.count) tensors, \($0.bytes) bytes)\n" }.joined()
                         + "merged \(modules) modules from \(adapters.count) adapter\(adapters.count == 1 ? "" : "s")\n"
                         + (unused.isEmpty ? "" : "kept the base's \(unused.joined(separator: ", ")): a weighted combination uses no modules_to_save copy (as PEFT's add_weighted_adapter)\n")
                         + (errors.map { "\n" + (quantizedOut ? "error that requantizing adds" : "error of rounding to the output dtype")
                             + ", against the float32 merge:\n" + Compare.textReport($0.comparison, markdown: false) } ?? ""))
        }
    }
}
