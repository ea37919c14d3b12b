import ArgumentParser
import FTQArtifacts
import FTQCore
import FTQFormats
import FTQKernels

/// `ftq quantize`: bitsandbytes layouts (`--nf4`, `--fp4`, `--int8`) or ggml block types (`--type`).
struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Quantize a model: NF4, FP4 or LLM.int8 in the bitsandbytes layout, or a ggml type into GGUF.",
        discussion: """
        --nf4, --fp4, --int8 write what transformers + bitsandbytes save (formats/bnb-quants.md): \
        every 2-D linear weight (NAME.weight) is quantized, byte-identical to bitsandbytes on the \
        CPU; embeddings, the output head (lm_head), norms, biases and 1-D tensors keep their \
        dtype; --skip REGEX keeps more. 4-bit uses blocks of --blocksize (default 64) with double \
        quantization unless --no-double-quant. A Hugging Face directory gives a directory whose \
        config.json carries the quantization_config (--compute-dtype sets \
        bnb_4bit_compute_dtype), with the other files (tokenizer, generation config) copied: \
        AutoModelForCausalLM.from_pretrained loads it as it is. Output names default to \
        INPUT-nf4.safetensors, or DIR-nf4/ for a directory.

        --type writes GGUF: every 2-D floating-point (or quantized: it is decoded first) weight \
        gets the type, as llama-quantize --pure does; 1-D and scalar floating-point tensors are \
        written as F32. Rows that are not a multiple of 256 fall back as llama-quantize does \
        (Q4_K -> Q5_0, Q6_K -> Q8_0), rows not a multiple of 32 are kept as F16; each fallback is \
        reported. Types: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q6_K, byte-identical to ggml's \
        reference quantizers (formats/ggml-quants.md). The output defaults to INPUT-TYPE.gguf. A GGUF input \
        keeps its key-values, with general.file_type set for the type.

        One line per tensor goes to stderr (-q: none); --dry-run prints the plan and writes \
        nothing. A manifest and a checksum file are written with the output.
        """
    )

    @Argument(help: "Input: .safetensors, Hugging Face directory, index file or .gguf.")
    var input: String

    @Flag(help: "4-bit NormalFloat (bitsandbytes nf4).")
    var nf4 = false

    @Flag(help: "4-bit float (bitsandbytes fp4).")
    var fp4 = false

    @Flag(help: "LLM.int8 row-wise (bitsandbytes load_in_8bit).")
    var int8 = false

    @Option(help: "A ggml type, written as GGUF: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K or Q6_K.")
    var type: String?

    @Option(name: .shortAndLong, help: "Output file or directory (default: beside the input, named for the type).")
    var output: String?

    @Option(help: "4-bit block size: 32, 64, 128, 256, 512, 1024, 2048 or 4096.")
    var blocksize: Int = 64

    @Flag(help: "4-bit without double quantization (float32 absmax per block).")
    var noDoubleQuant = false

    @Option(help: "bnb_4bit_compute_dtype in config.json: bf16, f16 or f32.")
    var computeDtype: String = "bf16"

    @Option(help: "Keep weights whose name matches this regular expression (repeatable).")
    var skip: [String] = []

    @Flag(help: "Print the plan (each tensor's fate and the output size) and write nothing.")
    var dryRun = false

    @Flag(help: "Measure the error of every quantized tensor while writing it (formats/metrics.md); printed, in --json and in the manifest.")
    var report = false

    @Option(help: "With --report: write a chart of the error by layer and tensor kind to this file: NAME.svg or NAME.png.")
    var plot: String?

    @OptionGroup var tensorTypes: TensorTypeOptions

    @Flag(help: "Print what was written (or, with --dry-run, the plan) as JSON.")
    var json = false

    @OptionGroup var outputOptions: OutputOptions
    @OptionGroup var threads: ThreadOptions

    func run() throws {
        let chosen = [nf4, fp4, int8, type != nil].filter { $0 }.count
        guard chosen == 1 else {
            throw FTQError.usage(chosen == 0 ? "usage.missing" : "usage.conflict",
                                 "choose exactly one of --nf4, --fp4, --int8 or --type")
        }
        if plot != nil && !report { throw FTQError.usage("usage.conflict", "--plot needs --report") }
        if let plot { try ErrorChart.checkName(plot) }
        if report && dryRun { throw FTQError.usage("usage.conflict", "--report measures what is written; it cannot go with --dry-run") }
        if let type {
            for (flag, set) in [("--blocksize", blocksize != 64), ("--no-double-quant", noDoubleQuant),
                                ("--compute-dtype", computeDtype != "bf16"), ("--skip", !skip.isEmpty), ("--dry-run", dryRun)] where set {
                throw FTQError.usage("usage.conflict", "\(flag) applies to --nf4, --fp4 and --int8, not --type")
            }
            return try runGGML(type)
        }
        if let flag = tensorTypes.firstGiven {
            throw FTQError.usage("usage.conflict", "\(flag) applies to --type (GGUF), not --nf4, --fp4 or --int8")
        }
        try runBnB()
    }

    // MARK: ggml

    func runGGML(_ type: String) throws {
        guard let q = GGMLQuantizeType.allCases.first(where: { $0.rawValue.uppercased() == type.uppercased() }) else {
            throw FTQError.usage("usage.type", "--type must be Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K or Q6_K (got \"\(type)\")")
        }
        let out = output ?? Self.defaultOutput(input, suffix: q.rawValue, directory: false, gguf: true)
        guard out.hasByteSuffix(".gguf") else {
            throw FTQError.usage("usage.conflict", "--type writes GGUF: give -o a NAME.gguf (got \(out))")
        }
        let args = try ConversionArguments.parse([input, "-o", out] + (json ? ["--json"] : []))
        try Self.refuseQuantized(try ModelOpener.open(input))
        let model = try ModelOpener.open(input)
        var run = ConversionRun(command: "quantize", args: args, outputOptions: outputOptions, threads: threads, dequantize: false)
        run.quantize = q
        run.typeOverrides = try tensorTypes.overrides()
        run.report = report ? QuantizationReport(sourceIsGGUF: model.format == .gguf) : nil
        run.plot = plot
        try run.run()
    }

    /// Writes the report's chart (relative Frobenius error by layer and kind) atomically.
    /// A checkpoint already in a bitsandbytes layout is refused: its packed bytes are not
    /// weights (ftq dequantize restores them first).
    static func refuseQuantized(_ model: Model) throws {
        guard model.format == .safetensors, BnBDequantizer.detect(model) else { return }
        throw FTQError.invalid("quantize.already-quantized", file: model.path,
            "the model is already quantized in a bitsandbytes layout (NF4, FP4 or int8); run ftq dequantize first")
    }

    /// `dir/model.safetensors` -> `dir/model-Q4_0.gguf` or `dir/model-nf4.safetensors`; a
    /// directory `dir/` -> `dir-Q4_0.gguf` or `dir-nf4` (a directory).
    static func defaultOutput(_ input: String, suffix: String, directory: Bool, gguf: Bool) -> String {
        var p = input
        while p.count > 1 && p.hasByteSuffix("/") { p.removeLast() }
        for ext in [".safetensors.index.json", ".safetensors", ".gguf"] where p.hasByteSuffix(ext) {
            p.removeLast(ext.count)
            break
        }
        return p + "-" + suffix + (gguf ? ".gguf" : directory ? "" : ".safetensors")
    }

    // MARK: bitsandbytes

    func runBnB() throws {
        var opts = BnBOptions(mode: nf4 ? .fourBit(.nf4) : fp4 ? .fourBit(.fp4) : .int8)
        opts.blocksize = blocksize
        opts.doubleQuant = !noDoubleQuant
        opts.skip = skip
        opts.threads = threads.count
        switch computeDtype.lowercased() {
        case "bf16", "bfloat16": opts.computeDType = "bfloat16"
        case "f16", "fp16", "float16": opts.computeDType = "float16"
        case "f32", "fp32", "float32": opts.computeDType = "float32"
        default: throw FTQError.usage("usage.dtype", "--compute-dtype must be bf16, f16 or f32 (got \"\(computeDtype)\")")
        }
        if int8 {
            for (flag, set) in [("--blocksize", blocksize != 64), ("--no-double-quant", noDoubleQuant), ("--compute-dtype", computeDtype != "bf16")] where set {
                throw FTQError.usage("usage.conflict", "\(flag) applies to 4-bit (--nf4, --fp4), not --int8")
            }
        }
        let model = try ModelOpener.open(input)
        try Self.refuseQuantized(model)
        let isDirectory = PathKind.of(model.path) == .directory
        let suffix = nf4 ? "nf4" : fp4 ? "fp4" : "int8"
        let out = output ?? Self.defaultOutput(input, suffix: suffix, directory: isDirectory, gguf: false)
        if out.hasByteSuffix(".gguf") {
            throw FTQError.usage("usage.conflict", "--\(suffix) writes safetensors: give -o NAME.safetensors or a directory (got \(out))")
        }
        let target: OutputTarget = out.hasByteSuffix(".safetensors")
            ? .safetensorsFile(out) : .hfDirectory(out, maxShardSize: Converter.defaultMaxShardSize)
        let manifestDir = out.hasByteSuffix(".safetensors") ? splitPath(out).dir : out

        var convertOptions = ConvertOptions(overwrite: outputOptions.force, quiet: outputOptions.quiet,
                                            digest: FileHashing.sha256, sidecars: nil)
        var quantizer = try BnBQuantizer(model: model, options: convertOptions, bnb: opts)
        let plans = quantizer.plan()
        if dryRun { return try printPlan(quantizer, plans, output: out) }
        if !outputOptions.quiet && !json {
            quantizer.tensorLine = { writeStderr(TerminalText.escaped($0, limit: 1000) + "\n") }
        }

        let inputPaths = model.files.map(\.path) + model.auxiliaryFiles + (try CompanionFiles.paths(model))
        var commandLine = ["ftq", "quantize", ArtifactPaths.relative(input, to: manifestDir), "--\(suffix)",
                           "-o", ArtifactPaths.relative(out, to: manifestDir)]
        if !int8 {
            commandLine += ["--blocksize", String(blocksize)]
            if noDoubleQuant { commandLine.append("--no-double-quant") }
            commandLine += ["--compute-dtype", opts.computeDType]
        }
        for s in skip { commandLine += ["--skip", s] }
        if report { commandLine.append("--report") }
                let options: [(String, JSONValue)] = [
            ("output_format", .string(isDirectory && !out.hasByteSuffix(".safetensors") ? "hf-directory" : "safetensors")),
            ("type", .string(opts.typeName)),
            ("blocksize", int8 ? .null : .int(blocksize)),
            ("double_quant", int8 ? .null : .bool(!noDoubleQuant)),
            ("compute_dtype", int8 ? .null : .string(opts.computeDType)),
            ("skip", .array(skip.map { .string($0) })),
        ]
        let errors = report ? QuantizationReport(sourceIsGGUF: model.format == .gguf) : nil
        convertOptions.sidecars = ArtifactPaths.manifestSidecars(command: commandLine, options: options, inputPaths: inputPaths,
                                                                 manifestDirectory: manifestDir, threads: threads.count, report: errors)
        var q2 = try BnBQuantizer(model: model, options: convertOptions, bnb: opts)
        q2.tensorLine = quantizer.tensorLine
        q2.report = errors
        let written = try q2.run(to: target)

        let quantized = plans.filter { $0 == .quantize }.count
        let inBytes = model.totalBytes
        let outBytes = written.filter { !$0.tensors.isEmpty }.reduce(0) { $0 + $1.bytes }
        let qElements = zip(model.tensors, plans).filter { $0.1 == .quantize }.reduce(0) { $0 + $1.0.elementCount }
        // The quantized tensors' bytes as written: each weight with all its parts.
        var partOf: [ExactName: Bool] = [:]
        for (t, p) in zip(model.tensors, plans) where p == .quantize { partOf[ExactName(t.name)] = true }
        let qBytes = written.flatMap(\.tensors).reduce(0) { sum, w in
            var owner = w.name
            // p, p.absmax, p.quant_state...; for int8 m.weight, m.SCB, m.weight_format.
            for suffix in [".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map", ".quant_state.bitsandbytes__nf4",
                           ".quant_state.bitsandbytes__fp4"] where owner.hasByteSuffix(suffix) { owner.removeLast(suffix.count) }
            for suffix in [".SCB", ".weight_format"] where owner.hasByteSuffix(suffix) { owner = String(owner.dropLast(suffix.count)) + ".weight" }
            return partOf[ExactName(owner)] == true ? sum + w.nbytes : sum
        }
        let bpw = qElements > 0 ? Double(qBytes * 8) / Double(qElements) : 0
        if json {
            let v = JSONValue.object([
                ("input", .string(input)),
                ("type", .string(opts.typeName)),
                ("tensors", .int(model.tensors.count)),
                ("quantized", .int(quantized)),
                ("input_bytes", .int(inBytes)),
                ("output_bytes", .int(outBytes)),
                ("bits_per_weight", .double((bpw * 1000).rounded() / 1000)),
                ("outputs", .array(written.map { w in
                    .object([("path", .string(w.path)), ("bytes", .int(w.bytes)), ("tensors", .int(w.tensors.count))])
                })),
            ] + (errors.map { [("report", Compare.reportJSON($0.comparison))] } ?? []))
            try printOut(JSONText.serialize(v, indent: 2) + "\n")
        } else {
            var text = written.filter { !$0.tensors.isEmpty }.map { "wrote \($0.path) (\($0.tensors.count) tensors, \($0.bytes) bytes)\n" }.joined()
            text += "\(quantized) of \(model.tensors.count) tensors -> \(opts.typeName) (\(Self.threeDecimals(bpw)) bits per weight); "
            text += "\(ByteSize.format(inBytes)) -> \(ByteSize.format(outBytes))\n"
            if let errors { text += "\n" + Compare.textReport(errors.comparison, markdown: false) }
            try printOut(text)
        }
        if let errors, let plot { try ErrorChart.write(errors.comparison, metric: "relative_frobenius", a: input, b: out, to: plot) }
    }

    /// `x` with three decimals (x >= 0).
    static func threeDecimals(_ x: Double) -> String {
        let m = Int((x * 1000).rounded())
        let frac = String(m % 1000)
        return "\(m / 1000)." + String(repeating: "0", count: 3 - frac.count) + frac
    }

    func printPlan(_ q: BnBQuantizer, _ plans: [BnBTensorPlan], output: String) throws {
        var total = 0
        var rows: [JSONValue] = []
        var text = ""
        for (k, t) in q.model.tensors.enumerated() {
            let bytes: Int
            switch plans[k] {
            case .quantize: bytes = q.quantizedBytes(t)
            case .keep: bytes = t.type.plainDType == nil ? t.elementCount * 4 : t.nbytes
            }
            total += bytes
            var reason: JSONValue = .null
            if case let .keep(r) = plans[k] { reason = .string(r) }
            rows.append(.object([("name", .string(t.name)), ("shape", .array(t.shape.map { .int($0) })),
                                 ("dtype", .string(t.type.name)), ("quantize", .bool(plans[k] == .quantize)),
                                 ("reason", reason), ("bytes", .int(bytes))]))
            text += q.describe(index: k, plan: plans[k]) + "\n"
        }
        if json {
            let v = JSONValue.object([("input", .string(input)), ("output", .string(output)), ("type", .string(q.bnb.typeName)),
                                      ("tensors", .array(rows)), ("output_tensor_bytes", .int(total))])
            try printOut(JSONText.serialize(v, indent: 2) + "\n")
        } else {
            text += "dry run: would write \(output), about \(ByteSize.format(total)) of tensor data\n"
            try printOut(text)
        }
    }
}
