import ArgumentParser
import FTQCore
import FTQFormats

/// `ftq dequantize`: quantized tensors back to floating point.
struct Dequantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Dequantize a quantized GGUF to safetensors or to an F32/F16/BF16 GGUF.",
        discussion: """
        Every quantized tensor is decoded to float32 (formats/ggml-quants.md) and written as \
        --dtype (default f32); other tensors are copied, floating-point ones converted when \
        --dtype is given. The output kind follows -o as for convert: NAME.gguf, NAME.safetensors \
        or a Hugging Face directory. Tensor names are kept; shapes are row-major (GGUF ne reversed). \
        Quantized types ftq cannot decode yet are refused with an error naming the tensor. \
        A manifest and a checksum file are written with the output.
        """
    )

    @Argument(help: "A quantized GGUF file (or split set).")
    var input: String

    @Option(name: .shortAndLong, help: "Output: NAME.gguf, NAME.safetensors or a directory.")
    var output: String

    @Option(help: "Write floating-point tensors as f32, f16 or bf16 (default: quantized ones as f32, others unchanged).")
    var dtype: String?

    @Option(help: "Largest shard of a directory output (default 5GB).")
    var maxShardSize: String?

    @Flag(help: "Print what was written as JSON.")
    var json = false

    @OptionGroup var outputOptions: OutputOptions
    @OptionGroup var threads: ThreadOptions

    func run() throws {
        try ConversionRun(command: "dequantize", input: input, output: output, dtype: dtype, maxShardSize: maxShardSize,
                          json: json, outputOptions: outputOptions, threads: threads, dequantize: true).run()
    }
}
