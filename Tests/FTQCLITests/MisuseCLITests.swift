import Foundation
import Testing

/// Command lines that are wrong: missing paths, a directory where a file is expected and the
/// reverse, an output equal to an input, unknown and conflicting options. Each exits 2, 3 or
/// 4 (formats/cli.md, "Exit codes") with a message that names the problem, and writes nothing.
@Suite struct MisuseCLITests {
    struct Case: Sendable, CustomTestStringConvertible {
        var args: [String]
        var status: Int32
        /// Every one of these must be in the error output.
        var mentions: [String]
        var testDescription: String { args.joined(separator: " ") }
    }

    static let cases: [Case] = [
        // Missing arguments and paths.
        Case(args: ["convert"], status: 2, mentions: ["Missing expected argument '<input>'"]),
        Case(args: ["convert", "m.safetensors"], status: 2, mentions: ["Missing expected argument '--output <output>'"]),
        Case(args: ["convert", "missing.safetensors", "-o", "o.gguf"], status: 4, mentions: ["missing.safetensors", "[io.not-found]"]),
        Case(args: ["quantize", "missing.safetensors", "--type", "Q8_0"], status: 4, mentions: ["missing.safetensors", "[io.not-found]"]),
        Case(args: ["merge", "m.safetensors"], status: 2, mentions: ["Missing expected argument '<adapters> ...'"]),
        Case(args: ["merge", "m.safetensors", "missing-adapter", "-o", "x.safetensors"], status: 4, mentions: ["missing-adapter", "[io.not-found]"]),
        Case(args: ["merge", "missing.safetensors", "ad", "-o", "x.safetensors"], status: 4, mentions: ["missing.safetensors", "[io.not-found]"]),
        Case(args: ["pack", "-o", "p.ftqz"], status: 2, mentions: ["Missing expected argument '<paths> ...'"]),
        Case(args: ["pack", "missing", "-o", "p.ftqz"], status: 4, mentions: ["missing", "[io.not-found]"]),
        Case(args: ["unpack", "missing.ftqz", "-o", "out"], status: 4, mentions: ["missing.ftqz", "[io.not-found]"]),
        Case(args: ["verify", "missing"], status: 4, mentions: ["missing", "[io.not-found]"]),
        Case(args: ["hash", "missing"], status: 4, mentions: ["missing", "[io.not-found]"]),
        // A directory where a file is expected, and the reverse.
        Case(args: ["convert", "emptydir", "-o", "o.gguf"], status: 3, mentions: ["emptydir", "no .safetensors file", "[input.no-model]"]),
        Case(args: ["convert", "m.safetensors", "-o", "adir.safetensors"], status: 2, mentions: ["adir.safetensors is a directory", "[output.is-directory]"]),
        Case(args: ["pack", "m.safetensors", "-o", "adir.safetensors"], status: 2, mentions: ["adir.safetensors is a directory", "[output.is-directory]"]),
        Case(args: ["unpack", "emptydir", "-o", "out"], status: 3, mentions: ["emptydir", "a directory", "[input.not-regular-file]"]),
        Case(args: ["merge", "m.safetensors", "m.safetensors", "-o", "x.safetensors"], status: 3,
             mentions: ["m.safetensors", "expected a directory holding adapter_config.json", "[merge.adapter-config]"]),
        Case(args: ["verify", "emptydir"], status: 4, mentions: ["emptydir", "no ftq-manifest.json or SHA256SUMS", "[io.not-found]"]),
        // The output is an input (even with --force, and under another spelling).
        Case(args: ["convert", "m.safetensors", "-o", "./m.safetensors", "--force"], status: 2, mentions: ["./m.safetensors is an input file", "[output.is-input]"]),
        Case(args: ["quantize", "m.gguf", "--type", "Q8_0", "-o", "m.gguf", "--force"], status: 2, mentions: ["m.gguf is an input file", "[output.is-input]"]),
        Case(args: ["dequantize", "m.gguf", "-o", "m.gguf", "--force"], status: 2, mentions: ["m.gguf is an input file", "[output.is-input]"]),
        Case(args: ["merge", "m.safetensors", "ad", "-o", "m.safetensors", "--force"], status: 2, mentions: ["m.safetensors is an input file", "[output.is-input]"]),
        Case(args: ["pack", "m.safetensors", "-o", "m.safetensors", "--force"], status: 2, mentions: ["m.safetensors is an input of this pack", "[output.is-input]"]),
        // Unknown options and values.
        Case(args: ["convert", "m.safetensors", "-o", "o.gguf", "--bogus"], status: 2, mentions: ["Unknown option '--bogus'"]),
        Case(args: ["quantize", "m.safetensors", "--type", "Q8_0", "--bogus"], status: 2, mentions: ["Unknown option '--bogus'"]),
        Case(args: ["merge", "m.safetensors", "ad", "-o", "x.safetensors", "--bogus"], status: 2, mentions: ["Unknown option '--bogus'"]),
        Case(args: ["pack", "m.safetensors", "-o", "p.ftqz", "--bogus"], status: 2, mentions: ["Unknown option '--bogus'"]),
        Case(args: ["frobnicate"], status: 2, mentions: ["Unexpected argument 'frobnicate'"]),
        Case(args: ["convert", "m.safetensors", "-o", "o.gguf", "--dtype", "f8"], status: 2, mentions: ["\"f8\"", "[usage.dtype]"]),
        Case(args: ["quantize", "m.safetensors", "--type", "Q9"], status: 2, mentions: ["\"Q9\"", "[usage.type]"]),
        // Conflicting options.
        Case(args: ["convert", "m.safetensors", "-o", "o.gguf", "--max-shard-size", "1GB"], status: 2, mentions: ["--max-shard-size", "o.gguf", "[usage.conflict]"]),
        Case(args: ["quantize", "m.safetensors", "--type", "Q8_0", "--nf4"], status: 2, mentions: ["exactly one of", "[usage.conflict]"]),
        Case(args: ["quantize", "m.safetensors", "--type", "Q8_0", "-o", "q.safetensors"], status: 2, mentions: ["q.safetensors", "[usage.conflict]"]),
        Case(args: ["quantize", "m.safetensors"], status: 2, mentions: ["exactly one of", "[usage.missing]"]),
    ]

    @Test(arguments: cases)
    func misuseIsRefusedByName(_ c: Case) throws {
        let dir = try TestSupport.tempDir("ftq-misuse")
        defer { TestSupport.cleanup(dir) }
        let fm = FileManager.default
        try fm.copyItem(atPath: TestSupport.testdata("malformed/ok_valid.safetensors"), toPath: dir + "/m.safetensors")
        try fm.copyItem(atPath: TestSupport.testdata("malformed/ok_valid.gguf"), toPath: dir + "/m.gguf")
        try fm.copyItem(atPath: TestSupport.testdata("golden/peft/llama-lora"), toPath: dir + "/ad")
        try fm.createDirectory(atPath: dir + "/emptydir", withIntermediateDirectories: false)
        try fm.createDirectory(atPath: dir + "/adir.safetensors", withIntermediateDirectories: false)
        let before = Set(try fm.subpathsOfDirectory(atPath: dir))
        let inputs = try ["m.safetensors", "m.gguf"].map { try Data(contentsOf: URL(fileURLWithPath: dir + "/" + $0)) }

        let r = try TestSupport.ftq(c.args, cwd: dir)
        #expect(r.status == c.status, "exit \(r.status): \(r.stderr)")
        for m in c.mentions {
            #expect(r.stderr.contains(m), "\"\(m)\" not in: \(r.stderr)")
        }
        // Nothing was written, and the inputs are as they were.
        #expect(Set(try fm.subpathsOfDirectory(atPath: dir)) == before)
        #expect(try ["m.safetensors", "m.gguf"].map { try Data(contentsOf: URL(fileURLWithPath: dir + "/" + $0)) } == inputs)
    }
}
