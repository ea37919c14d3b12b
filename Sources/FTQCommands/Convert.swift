import ArgumentParser
import FTQCore
import FTQFormats
import FTQArtifacts
import FTQKernels

/// `ftq convert`.
struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert between safetensors (file or Hugging Face directory) and GGUF, and re-shard.",
        discussion: """
        The output kind follows -o: NAME.gguf writes GGUF v3; NAME.safetensors writes one \
        safetensors file; anything else writes a Hugging Face directory (model.safetensors, or \
        shards model-00001-of-0000N.safetensors and model.safetensors.index.json when the tensors \
        exceed --max-shard-size).

        --dtype converts floating-point tensors (F64, F32, F16, BF16) with round-to-nearest-even, \
        bit-identical to numpy and ml_dtypes; integer, bool and 8-bit float tensors keep their dtype. \
        Sizes use the Hugging Face convention: 5GB = 5*10^9 bytes, 500MiB = 500*2^20.

        Memory stays bounded by a few fixed buffers (an 8 MiB read chunk, its converted copy, a \
        4 MiB write buffer) plus the headers, whatever the model's size. Outputs are written under \
        a temporary name and renamed when complete; an existing output is refused without --force.

        A Hugging Face directory whose config.json has model_type llama, mistral or qwen2, written \
        to NAME.gguf, becomes a GGUF that llama.cpp runs: llama.cpp's tensor names, q/k rows in its \
        per-head RoPE order (llama), norms in F32, the architecture metadata from config.json and \
        the vocabulary (byte-level BPE from tokenizer.json, SentencePiece from tokenizer.model or \
        a byte-fallback tokenizer.json) (formats/llama-gguf.md). Other model_types are refused. \
        --type F32, F16 or BF16 sets the type of the 2-D weights; a ggml type (Q8_0, Q4_0, Q4_1, \
        Q5_0, Q5_1, Q4_K, Q6_K) quantizes them as `ftq quantize --type` does. \
        A bitsandbytes checkpoint of such a model (NF4, FP4, int8) is dequantized on the fly, as \
        `ftq dequantize` does, and then written the same way.

        GGUF outputs take per-tensor types as llama-quantize does: --token-embedding-type T \
        (token_embd.weight), --output-tensor-type T (output.weight), and --tensor-type PATTERN=T \
        (repeatable): a 2-D weight whose GGUF name contains a match of the regular expression \
        PATTERN (lowercased) takes T, the first matching PATTERN winning. They take precedence \
        over --type in that order; K-quant rows that are not a multiple of 256 still fall back.

        The reverse: a llama-architecture GGUF written to a directory becomes a Hugging Face \
        checkpoint that transformers loads: HF tensor names, q/k rows back in HF order, quantized \
        tensors decoded (F32, or --dtype), config.json, generation_config.json, and tokenizer.json \
        with tokenizer_config.json for gpt-2 and llama-bpe vocabularies.
        """
    )

    @OptionGroup var args: ConversionArguments
    @OptionGroup var outputOptions: OutputOptions
    @OptionGroup var threads: ThreadOptions

    @Option(help: "GGUF outputs: the type of 2-D weights: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K or Q6_K.")
    var type: String?

    @Option(help: "Llama GGUF outputs: llama.cpp's pre-tokenizer name (tokenizer.ggml.pre), when ftq cannot derive it from tokenizer.json.")
    var tokenizerPre: String?

    @OptionGroup var tensorTypes: TensorTypeOptions

    func run() throws {
        var args = self.args
        var quantize: GGMLQuantizeType? = nil
        if let type {
            guard args.output.hasByteSuffix(".gguf") else {
                throw FTQError.usage("usage.conflict", "--type writes GGUF; give -o a NAME.gguf, not \(args.output)")
            }
            let upper = type.uppercased()
            if let q = GGMLQuantizeType(rawValue: upper) {
                quantize = q
            } else if ["F32", "F16", "BF16"].contains(upper) {
                guard args.dtype == nil else { throw FTQError.usage("usage.conflict", "give --type or --dtype, not both") }
                args.dtype = upper.lowercased()
            } else {
                throw FTQError.usage("usage.type", "--type must be F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K or Q6_K (got \"\(type)\")")
            }
        }
        if let option = tensorTypes.firstGiven, !args.output.hasByteSuffix(".gguf") {
            throw FTQError.usage("usage.conflict", "\(option) sets a GGUF tensor type; give -o a NAME.gguf, not \(args.output)")
        }
        let overrides = try tensorTypes.overrides()
        try ConversionRun(command: "convert", args: args, outputOptions: outputOptions, threads: threads, dequantize: false,
                          quantize: quantize, tokenizerPre: tokenizerPre, typeOverrides: overrides).run()
    }
}

/// The arguments `convert` and `dequantize` share.
struct ConversionArguments: ParsableArguments {
    @Argument(help: "Input: .safetensors, Hugging Face directory, index file, .gguf or a split GGUF part.")
    var input: String

    @Option(name: .shortAndLong, help: "Output: NAME.gguf, NAME.safetensors or a directory.")
    var output: String

    @Option(help: "Write floating-point tensors as f32, f16 or bf16.")
    var dtype: String?

    @Option(help: "Largest shard of a directory output (default 5GB).")
    var maxShardSize: String?

    @Flag(help: "Print what was written as JSON.")
    var json = false
}

/// What `convert` and `dequantize` share: output kind, manifest, conversion.
struct ConversionRun {
    var command: String
    var args: ConversionArguments
    var outputOptions: OutputOptions
    var threads: ThreadOptions
    var dequantize: Bool
    /// For `quantize --type`.
    var quantize: GGMLQuantizeType? = nil
    /// For `quantize --report`: the error of every quantized tensor, measured while writing.
    var report: QuantizationReport? = nil
    var plot: String? = nil
    /// For `convert --tokenizer-pre`.
    var tokenizerPre: String? = nil
    /// For `convert --token-embedding-type`, `--output-tensor-type`, `--tensor-type`.
    var typeOverrides: GGUFTypeOverrides? = nil

    var input: String { args.input }
    var output: String { args.output }
    var dtype: String? { args.dtype }
    var maxShardSize: String? { args.maxShardSize }
    var json: Bool { args.json }

    func run() throws {
        let target = try parseDTypeOption(dtype)
        let outputTarget: OutputTarget
        if output.hasByteSuffix(".gguf") || output.hasByteSuffix(".safetensors") {
            if maxShardSize != nil {
                throw FTQError.usage("usage.conflict", "--max-shard-size writes a directory; give -o a directory name, not \(output)")
            }
            outputTarget = output.hasByteSuffix(".gguf") ? .gguf(output) : .safetensorsFile(output)
        } else {
            let size = try maxShardSize.map(ByteSize.parse) ?? Converter.defaultMaxShardSize
            outputTarget = .hfDirectory(output, maxShardSize: size)
        }
        let model = try ModelOpener.open(input)
        let manifestDir: String
        let outputFormat: String
        var shardBytes: Int? = nil
        switch outputTarget {
        case .gguf: manifestDir = splitPath(output).dir; outputFormat = "gguf"
        case .safetensorsFile: manifestDir = splitPath(output).dir; outputFormat = "safetensors"
        case let .hfDirectory(dir, size): manifestDir = dir; outputFormat = "hf-directory"; shardBytes = size
        }
        // The inputs are hashed on the other cores while the conversion runs.
        let inputPaths = model.files.map(\.path) + model.auxiliaryFiles
        var commandLine = ["ftq", command, ArtifactPaths.relative(input, to: manifestDir), "-o", ArtifactPaths.relative(output, to: manifestDir)]
        // Options in one canonical spelling, so that equivalent command lines give equal manifests.
        if let quantize { commandLine += ["--type", quantize.rawValue] }
        commandLine += typeOverrides?.commandLine ?? []
        if let tokenizerPre { commandLine += ["--tokenizer-pre", tokenizerPre] }
        if report != nil { commandLine.append("--report") }
        if let target { commandLine += ["--dtype", target.rawValue.lowercased()] }
        if let shardBytes, maxShardSize != nil { commandLine += ["--max-shard-size", String(shardBytes)] }
        let command = commandLine
        var options: [(String, JSONValue)] = [
            ("output_format", .string(outputFormat)),
            ("dtype", target.map { .string($0.rawValue) } ?? .null),
            ("max_shard_size", shardBytes.map { .int($0) } ?? .null),
            ("dequantize", .bool(dequantize)),
            ("type", quantize.map { .string($0.rawValue) } ?? .null),
        ]
        // convert always records them; quantize when given (its manifests otherwise keep their keys).
        if self.command == "convert" || typeOverrides != nil { options += (typeOverrides ?? GGUFTypeOverrides()).manifestOptions }
        let sidecars = ArtifactPaths.manifestSidecars(command: command, options: options, inputPaths: inputPaths,
                                                      manifestDirectory: manifestDir, threads: threads.count, report: report)
        var convertOptions = ConvertOptions(
            dtype: target, overwrite: outputOptions.force, quiet: outputOptions.quiet, dequantize: dequantize,
            digest: FileHashing.sha256, sidecars: sidecars)
        convertOptions.quantize = quantize
        convertOptions.typeOverrides = typeOverrides
        convertOptions.threads = threads.count
        convertOptions.report = report
        convertOptions.notice = { writeStderr("ftq: note: \(TerminalText.escaped($0, limit: 500))\n") }
        if self.command == "convert", case .gguf = outputTarget {
            // A Llama-family Hugging Face directory becomes a GGUF llama.cpp runs.
            convertOptions.llama = try LlamaGGUF.detect(model)
            convertOptions.tokenizerPre = tokenizerPre
        }
        if tokenizerPre != nil && convertOptions.llama == nil {
            throw FTQError.usage("usage.conflict", "--tokenizer-pre applies to a Llama-family Hugging Face directory written as GGUF")
        }
        let written: [WrittenFile]
        if self.command == "convert", case .hfDirectory = outputTarget, GGUFToHF.applies(to: model) {
            // A Llama GGUF written as a directory becomes a checkpoint transformers loads.
            written = try GGUFToHF(model: model, options: convertOptions).run(to: outputTarget)
        } else {
            written = try Converter(model: model, options: convertOptions).run(to: outputTarget)
        }
        if let report, let plot { try ErrorChart.write(report.comparison, metric: "relative_frobenius", a: input, b: output, to: plot) }
        if json {
            var members: [(String, JSONValue)] = [
                ("input", .string(input)),
                ("outputs", .array(written.filter { !$0.kept }.map { w in
                    .object([("path", .string(w.path)), ("bytes", .int(w.bytes)), ("tensors", .int(w.tensors.count))])
                })),
            ]
            if let report { members.append(("report", Compare.reportJSON(report.comparison))) }
            try printOut(JSONText.serialize(.object(members), indent: 2) + "\n")
        } else {
            try printOut(written.filter { !$0.kept }.map { "wrote \($0.path) (\($0.tensors.count) tensors, \($0.bytes) bytes)\n" }.joined())
            if let report { try printOut("\n" + Compare.textReport(report.comparison, markdown: false)) }
        }
    }
}
