import ArgumentParser
import FTQArtifacts
import FTQCore
import FTQFormats

/// `ftq merge BASE ADAPTER -o OUT`: a PEFT LoRA adapter merged into a full-precision base.
struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Merge a PEFT LoRA adapter into a full-precision base model, as PEFT's merge_and_unload does.",
        discussion: """
        BASE is a safetensors file or a Hugging Face directory of F32, F16 or BF16 weights; \
        ADAPTER a PEFT LoRA directory (adapter_config.json, adapter_model.safetensors; r, \
        lora_alpha, use_rslora, rank_pattern, alpha_pattern, fan_in_fan_out). Every adapted \
        weight gets (B @ A) * scaling added in float32 and rounded once to its dtype (or \
        --dtype), byte-identical to PEFT on the CPU (formats/lora-merge.md); other tensors are \
        copied. The output takes the base's form: NAME.safetensors, or a directory with the \
        base's config and tokenizer files copied. A manifest records the base's and the \
        adapter's hashes.

        Not yet: several adapters (--weights), DoRA, modules_to_save, quantized and GGUF bases.
        """
    )

    @Argument(help: "The base model (safetensors file or Hugging Face directory).")
    var base: String

    @Argument(help: "The PEFT LoRA adapter directory.")
    var adapters: [String]

    @Option(name: .shortAndLong, help: "Output: NAME.safetensors or a directory.")
    var output: String

    @Option(help: "Write floating-point tensors as f32, f16 or bf16 (default: the base's dtypes).")
    var dtype: String?

    @Option(help: "Weights of several adapters (not supported yet).")
    var weights: String?

    @Flag(help: "Print what was written as JSON.")
    var json = false

    @OptionGroup var outputOptions: OutputOptions
    @OptionGroup var threads: ThreadOptions

    func run() throws {
        guard adapters.count == 1, weights == nil else {
            throw FTQError.usage("usage.merge-several", "merging several adapters (--weights) is not supported yet; give one adapter")
        }
        var target: DType? = nil
        if let dtype {
            switch dtype.lowercased() {
            case "f32", "float32": target = .F32
            case "f16", "float16": target = .F16
            case "bf16", "bfloat16": target = .BF16
            default: throw FTQError.usage("usage.dtype", "--dtype must be f32, f16 or bf16 (got \"\(dtype)\")")
            }
        }
        let model = try ModelOpener.open(base)
        guard model.format == .safetensors else {
            throw FTQError.invalid("merge.base-format", file: base, "merging into a GGUF base is not supported yet")
        }
        let adapter = try LoRAAdapter(directory: adapters[0])
        let isDirectory = PathKind.of(model.path) == .directory
        if output.hasByteSuffix(".gguf") {
            throw FTQError.usage("usage.conflict", "ftq merge writes safetensors: give -o NAME.safetensors or a directory (got \(output))")
        }
        let isFile = output.hasByteSuffix(".safetensors")
        let outputTarget: OutputTarget = isFile ? .safetensorsFile(output) : .hfDirectory(output, maxShardSize: Converter.defaultMaxShardSize)
        let manifestDir = isFile ? splitPath(output).dir : output
        var command = ["ftq", "merge", ArtifactPaths.relative(base, to: manifestDir), ArtifactPaths.relative(adapters[0], to: manifestDir),
                       "-o", ArtifactPaths.relative(output, to: manifestDir)]
        if let target { command += ["--dtype", target.rawValue.lowercased()] }
        let options: [(String, JSONValue)] = [
            ("output_format", .string(isFile ? "safetensors" : "hf-directory")),
            ("dtype", target.map { .string($0.rawValue) } ?? .null),
            ("adapters", .int(adapters.count)),
            ("weights", .null),
        ]
        let inputPaths = model.files.map(\.path) + model.auxiliaryFiles + (isDirectory && !isFile ? try CompanionFiles.paths(model) : [])
            + [adapter.configPath] + adapter.model.files.map(\.path)
        var opts = ConvertOptions(dtype: target, overwrite: outputOptions.force, quiet: outputOptions.quiet,
                                  digest: FileHashing.sha256, sidecars: nil)
        opts.sidecars = ArtifactPaths.manifestSidecars(command: command, options: options, inputPaths: inputPaths,
                                                       manifestDirectory: manifestDir, threads: threads.count)
        let merger = LoRAMerger(model: model, adapter: adapter, options: opts)
        let written = try merger.run(to: outputTarget)
        let models = written.filter { !$0.tensors.isEmpty }
        if json {
            let v = JSONValue.object([
                ("base", .string(base)), ("adapter", .string(adapters[0])),
                ("merged_modules", .int(adapter.modules.count)),
                ("outputs", .array(written.map { w in
                    .object([("path", .string(w.path)), ("bytes", .int(w.bytes)), ("tensors", .int(w.tensors.count))])
                })),
            ])
            try printOut(JSONText.serialize(v, indent: 2) + "\n")
        } else {
            try printOut(models.map { "wrote \($0.path) (\($0.tensors.count) tensors, \($0.bytes) bytes)\n" }.joined()
                         + "merged \(adapter.modules.count) modules\n")
        }
    }
}
