import ArgumentParser
import FTQArtifacts
import FTQCore
import FTQFormats
import FTQKernels

/// `ftq quantize --type`: a GGUF whose 2-D weights are ggml blocks.
struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Quantize a model's 2-D weights to a ggml block type, writing GGUF.",
        discussion: """
        Every 2-D floating-point (or quantized: it is decoded first) weight gets --type, as \
        llama-quantize --pure does; 1-D and scalar floating-point tensors are written as F32; a \
        2-D weight whose rows are not a multiple of 32 is kept as F16 and reported. Types: \
        Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, byte-identical to ggml's reference quantizers \
        (formats/ggml-quants.md). The output name defaults to INPUT-TYPE.gguf beside the input. \
        A GGUF input keeps its key-values, with general.file_type set for the type. A manifest \
        and a checksum file are written with the output.
        """
    )

    @Argument(help: "Input: .safetensors, Hugging Face directory, index file or .gguf.")
    var input: String

    @Option(help: "The ggml type: Q8_0, Q4_0, Q4_1, Q5_0 or Q5_1.")
    var type: String

    @Option(name: .shortAndLong, help: "Output GGUF (default: INPUT-TYPE.gguf beside the input).")
    var output: String?

    @Flag(help: "Print what was written as JSON.")
    var json = false

    @OptionGroup var outputOptions: OutputOptions
    @OptionGroup var threads: ThreadOptions

    func run() throws {
        guard let q = GGMLLegacyQuant(rawValue: type.uppercased()) else {
            throw FTQError.usage("usage.type", "--type must be Q8_0, Q4_0, Q4_1, Q5_0 or Q5_1 (got \"\(type)\")")
        }
        let out = output ?? Self.defaultOutput(input, q)
        guard out.hasByteSuffix(".gguf") else {
            throw FTQError.usage("usage.conflict", "--type writes GGUF: give -o a NAME.gguf (got \(out))")
        }
        let args = try ConversionArguments.parse([input, "-o", out] + (json ? ["--json"] : []))
        var run = ConversionRun(command: "quantize", args: args, outputOptions: outputOptions, threads: threads, dequantize: false)
        run.quantize = q
        try run.run()
    }

    /// `dir/model.safetensors` -> `dir/model-Q4_0.gguf`; a directory `dir/` -> `dir-Q4_0.gguf`.
    static func defaultOutput(_ input: String, _ q: GGMLLegacyQuant) -> String {
        var p = input
        while p.count > 1 && p.hasByteSuffix("/") { p.removeLast() }
        for ext in [".safetensors.index.json", ".safetensors", ".gguf"] where p.hasByteSuffix(ext) {
            p.removeLast(ext.count)
            break
        }
        return p + "-" + q.rawValue + ".gguf"
    }
}
