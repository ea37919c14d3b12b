import ArgumentParser
import FTQCore
#if canImport(Glibc)
import Glibc
#endif

/// The `ftq` command line.
public struct FTQ: ParsableCommand {
    public static let version = "0.1.0"

    public static let configuration = CommandConfiguration(
        commandName: "ftq",
        abstract: "Inspect, convert, checksum, verify and pack model files (safetensors, GGUF) on a CPU.",
        discussion: """
        Examples:
          ftq inspect model.safetensors
          ftq inspect Llama-3-8B/ --json
          ftq convert model.safetensors -o model.gguf
          ftq convert model.gguf -o model-bf16.safetensors --dtype bf16
          ftq convert big.safetensors -o out/ --max-shard-size 2GB
          ftq verify out/
          ftq hash --tensors model.gguf
          ftq pack out/ -o model.ftqz
          ftq unpack model.ftqz -o copy/
          ftq plan Llama-3.1-8B/config.json --method qlora --batch 2 --gradient-checkpointing --gpu 24GB
          ftq plan mistral-7b/ --method lora --lora-targets q,v --seq 4096 --flash-attention --json
          ftq plan model.gguf --method full --zero 3 --gpus 8 --gpu 80GB

        Exit codes:
          0  success
          1  a check failed (verify: a file differs, is missing or extra)
          2  usage error (unknown option, existing output without --force)
          3  invalid or unsupported input file (malformed, truncated)
          4  I/O error (missing file, permission denied, disk full)

        Errors are one line on stderr naming the file and, where it applies,
        the tensor or byte offset, with the rule's error code in brackets.
        """,
        version: FTQ.version,
        subcommands: [Inspect.self, Convert.self, Quantize.self, Dequantize.self, Compare.self, Merge.self, Plan.self, Hash.self, Verify.self] + packSubcommands + [Version.self]
    )

    public init() {}
}

/// Entry point: runs the command and maps every error to the documented exit code.
public enum FTQMain {
    public static func run(_ arguments: [String]? = nil) -> Never {
        TempFileRegistry.shared.installSignalHandlers()
        do {
            var command = try FTQ.parseAsRoot(arguments)
            try command.run()
            terminate(0)
        } catch let e as FTQError {
            writeStderr("ftq: error: \(e.description)\n")
            terminate(e.kind.exitCode)
        } catch let e as ExitCode {
            terminate(e.rawValue)
        } catch {
            let code = FTQ.exitCode(for: error)
            let message = FTQ.fullMessage(for: error)
            if code == .success {
                print(message)
                terminate(0)
            }
            writeStderr(message + "\n")
            terminate(FTQError.Kind.usage.exitCode)
        }
    }
}

/// Ends the process with `code` at once, after flushing C's standard streams.
///
/// `_exit` rather than `exit`: a background thread (hashing inputs while a conversion runs)
/// may still be working when a command fails early, and `exit` would run the process's
/// global destructors underneath it. Every file ftq writes is complete (renamed into place)
/// or removed before this point.
func terminate(_ code: Int32) -> Never {
    fflush(nil)  // every open output stream
    _exit(code)
}

/// `ftq version`: ftq and its linked libraries.
struct Version: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print ftq's version and the libraries it uses.")

    func run() throws {
        try printOut("ftq \(FTQ.version)\nlibcrypto: \(LinkedLibrariesInfo.openSSL)\nlibzstd: \(LinkedLibrariesInfo.zstd)\n")
    }
}
