import ArgumentParser
import FTQArtifacts
import FTQCore
import FTQFormats

/// `ftq hash`: SHA-256 of files, or of every tensor in them, in `sha256sum` format.
struct Hash: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print SHA-256 checksums of files, or of every tensor in model files.",
        discussion: """
        Lines are in the format of sha256sum (`<hex>  <path>`), so `sha256sum -c` can check them. \
        A directory stands for the regular files in it. With --tensors, one line per tensor \
        (`<hex>  <file>:<tensor>`) for safetensors files, Hugging Face directories and GGUF files \
        alike: the digest of the tensor's data bytes, as in ftq's manifests.

        Several files are hashed at once, up to --threads (default: the number of cores).
        """
    )

    @Argument(help: "Files or directories.")
    var paths: [String]

    @Flag(help: "One line per tensor instead of per file.")
    var tensors = false

    @Flag(help: "Print JSON for scripts.")
    var json = false

    @OptionGroup var threads: ThreadOptions

    func run() throws {
        if tensors { return try runTensors() }
        var files: [String] = []
        for p in paths {
            switch PathKind.of(p) {
            case .directory:
                let names = try listDirectory(p).filter { PathKind.of(joinPath(p, $0)) == .regularFile }
                files += names.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }.map { joinPath(p, $0) }
            default:
                files.append(p)
            }
        }
        let digests = try FileHashing.hash(files, threads: threads.count)
        if json {
            try printOut(JSONText.serialize(.object([("files", .array(digests.map { d in
                .object([("path", .string(d.path)), ("size", .int(d.size)), ("sha256", .string(d.sha256))])
            }))]), indent: 2) + "\n")
        } else {
            try printOut(String(decoding: ChecksumList.format(digests.map { .init(sha256: $0.sha256, path: $0.path) }), as: UTF8.self))
        }
    }

    func runTensors() throws {
        var lines = ""
        var docs: [JSONValue] = []
        for p in paths {
            let model = try ModelOpener.open(p)
            let digests = try FileHashing.tensorDigests(model, threads: threads.count)
            for (t, d) in digests {
                // Tensor names come from the file: escaped like any text from a file (these lines
                // name tensors, not files, so they are not for `sha256sum -c`).
                lines += "\(d)  \(TerminalText.escaped(model.file(of: t).path)):\(TerminalText.escaped(t.name))\n"
            }
            docs.append(.object([
                ("path", .string(p)),
                ("tensors", .array(digests.map { t, d in
                    .object([("name", .string(t.name)), ("file", .string(model.file(of: t).path)),
                             ("dtype", .string(t.type.name)), ("offset", .int(t.offset)),
                             ("nbytes", .int(t.nbytes)), ("sha256", .string(d))])
                })),
            ]))
        }
        if json {
            try printOut(JSONText.serialize(.object([("models", .array(docs))]), indent: 2) + "\n")
        } else {
            try printOut(lines)
        }
    }
}
