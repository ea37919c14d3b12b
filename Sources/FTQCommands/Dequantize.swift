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

    @OptionGroup var args: ConversionArguments
    @OptionGroup var outputOptions: OutputOptions
    @OptionGroup var threads: ThreadOptions

    func run() throws {
        try ConversionRun(command: "dequantize", args: args, outputOptions: outputOptions, threads: threads, dequantize: true).run()
    }
}
