import ArgumentParser
import FTQArtifacts
import FTQCore
import FTQFormats

/// `ftq dequantize`: quantized tensors back to floating point.
struct Dequantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Dequantize a quantized GGUF or a bitsandbytes checkpoint (NF4, FP4, int8).",
        discussion: """
        GGUF: every quantized tensor is decoded to float32 (formats/ggml-quants.md) and written as \
        --dtype (default f32); other tensors are copied, floating-point ones converted when \
        --dtype is given. The output kind follows -o as for convert: NAME.gguf, NAME.safetensors \
        or a Hugging Face directory. Tensor names are kept; shapes are row-major (GGUF ne reversed).

        bitsandbytes (a checkpoint saved by transformers with load_in_4bit or load_in_8bit, made \
        on a CPU or a GPU, or by ftq quantize): each quantized weight with its absmax, quant_map, \
        nested and quant_state companions (or SCB and weight_format) becomes one tensor of its \
        quant_state dtype (int8: config.json's dtype, else f16), or --dtype \
        (formats/bnb-quants.md). A directory gives a directory whose config.json has no \
        quantization_config, with the other files copied; a file gives NAME.safetensors.

        Quantized types ftq cannot decode are refused with an error naming the tensor. A manifest \
        and a checksum file are written with the output.
        """
    )

    @OptionGroup var args: ConversionArguments
    @OptionGroup var outputOptions: OutputOptions
    @OptionGroup var threads: ThreadOptions

    func run() throws {
        let model = try ModelOpener.open(args.input)
        guard model.format == .safetensors, BnBDequantizer.detect(model) else {
            return try ConversionRun(command: "dequantize", args: args, outputOptions: outputOptions, threads: threads, dequantize: true).run()
        }
        try runBnB(model)
    }

    func runBnB(_ model: Model) throws {
        let out = args.output
        if out.hasByteSuffix(".gguf") {
            throw FTQError.usage("usage.conflict", "a bitsandbytes checkpoint dequantizes to safetensors: give -o NAME.safetensors or a directory (got \(out))")
        }
        let dtype = try parseDTypeOption(args.dtype)
        let isFile = out.hasByteSuffix(".safetensors")
        if isFile && args.maxShardSize != nil {
            throw FTQError.usage("usage.conflict", "--max-shard-size writes a directory; give -o a directory name, not \(out)")
        }
        let shard = try args.maxShardSize.map(ByteSize.parse) ?? Converter.defaultMaxShardSize
        let target: OutputTarget = isFile ? .safetensorsFile(out) : .hfDirectory(out, maxShardSize: shard)
        let manifestDir = isFile ? splitPath(out).dir : out
        var command = ["ftq", "dequantize", ArtifactPaths.relative(args.input, to: manifestDir), "-o", ArtifactPaths.relative(out, to: manifestDir)]
        if let dtype { command += ["--dtype", dtype.rawValue.lowercased()] }
        if args.maxShardSize != nil { command += ["--max-shard-size", String(shard)] }
        let options: [(String, JSONValue)] = [
            ("output_format", .string(isFile ? "safetensors" : "hf-directory")),
            ("dtype", dtype.map { .string($0.rawValue) } ?? .null),
            ("max_shard_size", args.maxShardSize != nil ? .int(shard) : .null),
            ("dequantize", .bool(true)),
            ("source_layout", .string("bitsandbytes")),
        ]
        let inputPaths = model.files.map(\.path) + model.auxiliaryFiles + (isFile ? [] : try CompanionFiles.paths(model))
        var opts = ConvertOptions(dtype: dtype, overwrite: outputOptions.force, quiet: outputOptions.quiet, dequantize: true,
                                  digest: FileHashing.sha256, sidecars: nil)
        opts.sidecars = ArtifactPaths.manifestSidecars(command: command, options: options, inputPaths: inputPaths,
                                                       manifestDirectory: manifestDir, threads: threads.count)
        let written = try BnBDequantizer(model: model, options: opts).run(to: target)
        let models = written.filter { !$0.tensors.isEmpty }
        if args.json {
            let v = JSONValue.object([
                ("input", .string(args.input)),
                ("outputs", .array(written.map { w in
                    .object([("path", .string(w.path)), ("bytes", .int(w.bytes)), ("tensors", .int(w.tensors.count))])
                })),
            ])
            try printOut(JSONText.serialize(v, indent: 2) + "\n")
        } else {
            try printOut(models.map { "wrote \($0.path) (\($0.tensors.count) tensors, \($0.bytes) bytes)\n" }.joined())
        }
    }
}
