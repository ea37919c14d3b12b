#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import FTQCore

/// Options every command that writes files takes.
struct OutputOptions: ParsableArguments {
    @Flag(name: .long, help: "Replace an existing output.")
    var force = false

    @Flag(name: [.short, .long], help: "No progress on stderr.")
    var quiet = false
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
