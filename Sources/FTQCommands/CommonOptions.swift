#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import FTQFormats
import FTQCore

/// Options every command that writes files takes.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Replace an existing output.")
    var force = false

    @Flag(name: [.short, .long], help: "No progress on stderr.")
    var quiet = false
}

/// llama-quantize's per-tensor types for GGUF outputs (`convert`, `quantize --type`;
/// formats/llama-gguf.md "Type overrides").
struct TensorTypeOptions: ParsableArguments {
    @Option(help: "GGUF outputs: the type of token_embd.weight (a --type name).")
    var tokenEmbeddingType: String?

    @Option(help: "GGUF outputs: the type of output.weight (a --type name).")
    var outputTensorType: String?

    @Option(help: ArgumentHelp("GGUF outputs: PATTERN=TYPE: 2-D weights whose GGUF name matches the regular expression PATTERN take TYPE (repeatable; the first match wins).",
                               valueName: "pattern=type"))
    var tensorType: [String] = []

    /// The first option given, as spelled on the command line (nil when none is).
    var firstGiven: String? {
        tokenEmbeddingType != nil ? "--token-embedding-type" : outputTensorType != nil ? "--output-tensor-type"
            : tensorType.isEmpty ? nil : "--tensor-type"
    }

    /// The overrides, parsed and checked (usage errors name the bad type or pattern); nil when
    /// none is given.
    func overrides() throws -> GGUFTypeOverrides? {
        guard firstGiven != nil else { return nil }
        return try GGUFTypeOverrides(tokenEmbedding: tokenEmbeddingType, output: outputTensorType, tensorTypes: tensorType)
    }
}

/// `--threads N`: how many cores a command may use. Outputs never depend on it.
struct ThreadOptions: ParsableArguments {
    @Option(help: "Threads to use (default: the number of cores). The output is the same for any value.")
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be 1 or more") }
    }

    var count: Int { threads ?? max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }
}

/// `--dtype f32|f16|bf16` (also float32, float16, bfloat16): nil when not given.
func parseDTypeOption(_ value: String?) throws -> DType? {
    guard let value else { return nil }
    switch value.lowercased() {
    case "f32", "float32": return .F32
    case "f16", "float16": return .F16
    case "bf16", "bfloat16": return .BF16
    default: throw FTQError.usage("usage.dtype", "--dtype must be f32, f16 or bf16 (got \"\(value)\")")
    }
}
