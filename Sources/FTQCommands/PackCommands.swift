import ArgumentParser
import FTQArtifacts
import FTQCore
import FTQFormats

/// The pack and unpack subcommands (compressed, checksummed bundles), registered with `ftq`.
let packSubcommands: [ParsableCommand.Type] = [Pack.self, Unpack.self]

/// `ftq pack`.
struct Pack: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Bundle model files into one compressed, checksummed .ftqz pack.",
        discussion: """
        Each PATH is a file (packed with its NAME.manifest.json and NAME.sha256 when they exist \
        beside it) or a directory (every regular file in it: shards, index, ftq-manifest.json, \
        SHA256SUMS, config.json, tokenizer files; subdirectories are refused). Files are stored \
        under their own names, in byte order of the names, so names must be unique.

        Compression is lossless zstd in independent frames of at most 4 MiB. The floating-point \
        tensor data of safetensors and GGUF files (BF16, F16, F32) is split into byte planes \
        before compression (sign and exponent bytes together, mantissa bytes together), which \
        compresses weights far better than zstd alone. The pack records the SHA-256 of every \
        file and tensor; `ftq unpack` checks them all. The same files and --level give the same \
        pack, whatever --threads.

        Also writes FILE.manifest.json and FILE.sha256 beside the pack. The pack is written \
        under a temporary name and renamed when complete; an existing output is refused \
        without --force. See formats/ftqz.md.
        """
    )

    @Argument(help: "Files or directories to pack.")
    var paths: [String]

    @Option(name: .shortAndLong, help: "The pack to write (NAME.ftqz).")
    var output: String

    @Option(help: "zstd compression level, 1 to 22 (default 3).")
    var level: Int?

    @Flag(help: "Print what was written as JSON.")
    var json = false

    @OptionGroup var outputOptions: OutputOptions
    @OptionGroup var threads: ThreadOptions

    static let sidecarSuffixes = [Manifest.fileSuffix, ".sha256"]

    func validate() throws {
        if paths.isEmpty { throw ValidationError("give at least one file or directory to pack") }
    }

    func run() throws {
        let level = self.level ?? PackFormat.defaultLevel
        guard PackFormat.levels.contains(level) else {
            throw FTQError.usage("usage.level", "--level must be \(PackFormat.levels.lowerBound) to \(PackFormat.levels.upperBound) (got \(level))")
        }
        let inputs = try Self.collect(paths)
        // The pack and its sidecars must not be inputs, and are refused if they exist.
        let targets = [output] + Self.sidecarSuffixes.map { output + $0 }
        let inputIDs = Set(try inputs.map { try InputFile($0.path).identity })
        for t in targets {
            if let id = FileIdentity.of(t), inputIDs.contains(id) {
                throw FTQError.usage("output.is-input", "\(t) is an input of this pack; write the pack elsewhere")
            }
        }
        for t in targets.dropFirst() {
            switch PathKind.of(t) {
            case .missing: continue
            case .directory: throw FTQError.usage("output.is-directory", "\(t) is a directory, expected a file name")
            default:
                if !outputOptions.force { throw FTQError.usage("output.exists", "\(t) already exists (use --force to replace it)") }
            }
        }
        let out = try OutputFile(output, overwrite: outputOptions.force, digest: FileHashing.sha256)
        let result: PackWriteResult
        let packSHA: String
        do {
            let total = try inputs.reduce(0) { try Checked.add($0, try InputFile($1.path).size, "pack.size-overflow", "total size") }
            let progress = Progress(label: "pack", totalBytes: total, quiet: outputOptions.quiet)
            result = try PackWriter.write(inputs, to: out, level: level, threads: threads.count, progress: progress)
            progress.finish()
            packSHA = try out.finish() ?? ""
            try writeSidecars(result, packSHA: packSHA, level: level)
            try out.commit()
        } catch {
            out.abort()
            throw error
        }
        let inBytes = result.index.totalSize
        let ratio = result.packBytes > 0 ? Double(inBytes) / Double(result.packBytes) : 0
        if json {
            let v = JSONValue.object([
                ("output", .string(output)),
                ("files", .array(zip(result.index.files, result.paths).map { f, p in
                    .object([("name", .string(f.name)), ("path", .string(p)), ("size", .int(f.size)), ("sha256", .string(f.sha256))])
                })),
                ("bytes_in", .int(inBytes)),
                ("bytes_out", .int(result.packBytes)),
                ("ratio", .double((ratio * 10000).rounded() / 10000)),
                ("sha256", .string(packSHA)),
                ("compress_seconds", .double((result.compressSeconds * 1000).rounded() / 1000)),
            ])
            try printOut(JSONText.serialize(v, indent: 2) + "\n")
        } else {
            let r = (ratio * 1000).rounded() / 1000
            let n = result.index.files.count
            try printOut("packed \(n) \(n == 1 ? "file" : "files") (\(inBytes) bytes) into \(output) (\(result.packBytes) bytes, ratio \(r))\n")
        }
    }

    /// `FILE.manifest.json` and `FILE.sha256`, written before the pack is renamed into place.
    func writeSidecars(_ result: PackWriteResult, packSHA: String, level: Int) throws {
        let dir = splitPath(output).dir
        let name = splitPath(output).base
        var command = ["ftq", "pack"] + paths.map { ArtifactPaths.relative($0, to: dir) } + ["-o", ArtifactPaths.relative(output, to: dir)]
        if let l = self.level { command += ["--level", String(l)] }
        let manifest = Manifest(
            toolVersion: FTQ.version, command: command, options: [("level", .int(level))],
            inputs: zip(result.index.files, result.paths).map { f, p in
                .init(path: ArtifactPaths.relative(p, to: dir), size: f.size, sha256: f.sha256)
            },
            outputs: [.init(path: name, size: result.packBytes, sha256: packSHA, tensors: [])])
        let manifestBytes = manifest.bytes
        let h = SHA256Hasher()
        h.update(manifestBytes)
        let sums = ChecksumList.format([.init(sha256: packSHA, path: name),
                                        .init(sha256: h.finalizeHex(), path: name + Manifest.fileSuffix)])
        for (suffix, bytes) in zip(Self.sidecarSuffixes, [manifestBytes, sums]) {
            let f = try OutputFile(output + suffix, overwrite: true)
            do { try f.write(bytes); try f.commit() } catch { f.abort(); throw error }
        }
    }

    /// The files named by `paths` (formats/ftqz.md, "What is packed"), in byte order of their
    /// names.
    static func collect(_ paths: [String]) throws -> [PackInput] {
        var out: [PackInput] = []
        var seen: [ExactName: FileIdentity] = [:]
        func add(_ path: String) throws {
            let name = splitPath(path.count > 1 && path.hasByteSuffix("/") ? String(path.dropLast()) : path).base
            guard PackFormat.validName(name) else {
                throw FTQError.invalid("pack.bad-name", file: path, "cannot be packed under the name \"\(name)\"")
            }
            let id = try InputFile(path).identity
            if let other = seen[ExactName(name)] {
                if other == id { return }
                throw FTQError.usage("pack.duplicate-name", "two inputs are named \"\(name)\"; a pack holds one file per name")
            }
            seen[ExactName(name)] = id
            out.append(PackInput(path: path, name: name))
        }
        for p in paths {
            switch PathKind.of(p) {
            case .missing:
                throw FTQError.io("io.not-found", file: p, "no such file or directory")
            case let .inaccessible(reason):
                throw FTQError.io("io.open", file: p, "cannot open: \(reason)")
            case let .other(kind):
                throw FTQError.invalid("input.not-regular-file", file: p, "not a regular file (\(kind))")
            case .regularFile:
                try add(p)
                for suffix in sidecarSuffixes where PathKind.of(p + suffix) == .regularFile { try add(p + suffix) }
            case .directory:
                let names = try listDirectory(p).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
                for n in names where !n.hasByteSuffix(".ftq-tmp") {
                    let child = joinPath(p, n)
                    switch PathKind.of(child) {
                    case .regularFile: try add(child)
                    case .directory:
                        throw FTQError.invalid("pack.subdirectory", file: child, "a subdirectory; ftq pack takes the files of a directory, not its subdirectories (pack them separately)")
                    case let .inaccessible(reason):
                        throw FTQError.io("io.open", file: child, "cannot open: \(reason)")
                    case .missing:
                        throw FTQError.io("io.not-found", file: child, "disappeared while listing the directory")
                    case let .other(kind):
                        throw FTQError.invalid("input.not-regular-file", file: child, "not a regular file (\(kind))")
                    }
                }
            }
        }
        return out.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
    }
}

/// `ftq unpack`.
struct Unpack: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Unpack a .ftqz pack into a directory, checking every checksum.",
        discussion: """
        DIR receives the packed files byte for byte, and ftq-manifest.json and SHA256SUMS \
        describing them (every file's size and SHA-256, and every tensor of safetensors and GGUF \
        files), so that `ftq verify DIR` or `sha256sum -c SHA256SUMS` can check them later. When \
        the pack itself holds a file named ftq-manifest.json or SHA256SUMS (a packed output \
        directory), those are kept as they were packed and none are written.

        Every frame, every file's SHA-256 and the index's SHA-256 are checked. Files are written \
        into a staging directory .DIR.PID.ftq-tmp beside DIR, which is renamed to DIR only when \
        everything matched; on any error DIR is not created. An existing non-empty DIR is \
        refused without --force; with --force the unpacked files are moved into it, replacing \
        files of the same names.

        Exit status: 1 when a checksum does not match (the pack is corrupted), 3 when the pack \
        is malformed or truncated.
        """
    )

    @Argument(help: "The pack (NAME.ftqz).")
    var input: String

    @Option(name: .shortAndLong, help: "The directory to unpack into.")
    var output: String

    @Flag(help: "Print what was written as JSON.")
    var json = false

    @OptionGroup var outputOptions: OutputOptions
    @OptionGroup var threads: ThreadOptions

    func run() throws {
        let reader = try PackReader(input)
        let carries = reader.index.files.contains { ExactName($0.name) == ExactName(Manifest.directoryName) || ExactName($0.name) == ExactName("SHA256SUMS") }
        // The pack's own digest (for the manifest's input) is taken from the bytes read with
        // one thread, and by a second reader on another core otherwise.
        let background = !carries && threads.count > 1 ? FileHashing.Background([input], threads: 1) : nil
        let outDir = output
        let packPath = input
        let packSize = reader.file.size
        let result = try PackExtractor.extract(
            reader, to: output, overwrite: outputOptions.force, threads: threads.count, quiet: outputOptions.quiet,
            hashPack: !carries && background == nil
        ) { r in
            if carries { return [] }
            guard let packSHA = try r.packSHA256 ?? background?.wait().first?.sha256 else { return [] }
            let rel = ArtifactPaths.relative(packPath, to: outDir)
            let manifest = Manifest(
                toolVersion: FTQ.version, command: ["ftq", "unpack", rel, "-o", ArtifactPaths.relative(outDir, to: outDir)],
                options: [], inputs: [.init(path: rel, size: packSize, sha256: packSHA)],
                outputs: r.files.map { .init(path: $0.name, size: $0.size, sha256: $0.sha256, otherSHA256: $0.otherSHA256, tensors: $0.tensors) })
            let manifestBytes = manifest.bytes
            let h = SHA256Hasher()
            h.update(manifestBytes)
            let sums = ChecksumList.format(r.files.map { .init(sha256: $0.sha256, path: $0.name) }
                                           + [.init(sha256: h.finalizeHex(), path: Manifest.directoryName)])
            return [(Manifest.directoryName, manifestBytes), ("SHA256SUMS", sums)]
        }
        let total = result.files.reduce(0) { $0 + $1.size }
        if json {
            let v = JSONValue.object([
                ("input", .string(input)),
                ("output", .string(output)),
                ("files", .array(result.files.map { f in
                    .object([("name", .string(f.name)), ("path", .string(f.path)), ("size", .int(f.size)), ("sha256", .string(f.sha256))])
                })),
                ("bytes", .int(total)),
                ("manifest_written", .bool(!carries)),
                ("decompress_seconds", .double((result.decompressSeconds * 1000).rounded() / 1000)),
            ])
            try printOut(JSONText.serialize(v, indent: 2) + "\n")
        } else {
            let n = result.files.count
            try printOut("unpacked \(n) \(n == 1 ? "file" : "files") (\(total) bytes) into \(output)\n")
        }
    }
}
