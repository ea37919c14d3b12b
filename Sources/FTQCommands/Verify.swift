import ArgumentParser
import FTQArtifacts
import FTQCore
import FTQFormats

/// `ftq verify`: is this artifact the one its manifest describes?
struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check output files against their manifest or checksum file.",
        discussion: """
        PATH is an output file (checked against X.manifest.json, or X.sha256), an output \
        directory (ftq-manifest.json, or SHA256SUMS), a manifest, or a sha256sum-format checksum \
        file. Every listed file is checked for presence, size and SHA-256; for a model file that \
        differs, every tensor is checked too, so the message names the corrupt layers. In a \
        directory, files that no manifest lists are reported as extra.

        Exit 0 when everything matches; 1 when anything differs, is missing or is extra; 3 when \
        the manifest or checksum file is malformed; 4 when it cannot be read.
        """
    )

    @Argument(help: "Output file or directory, manifest, or checksum file.")
    var path: String

    @Option(help: "The manifest to check against (default: found from PATH).")
    var manifest: String?

    @Flag(help: "Print JSON for scripts.")
    var json = false

    @OptionGroup var threads: ThreadOptions

    /// What PATH means.
    enum Against { case manifest(String), checksums(String) }

    func resolve() throws -> Against {
        if let manifest {
            if case .missing = PathKind.of(path) { throw FTQError.io("io.not-found", file: path, "no such file or directory") }
            return .manifest(manifest)
        }
        switch PathKind.of(path) {
        case .directory:
            let m = joinPath(path, Manifest.directoryName), s = joinPath(path, "SHA256SUMS")
            if PathKind.of(m) != .missing { return .manifest(m) }
            if PathKind.of(s) != .missing { return .checksums(s) }
            throw FTQError.io("io.not-found", file: path, "no \(Manifest.directoryName) or SHA256SUMS in this directory")
        case .missing:
            throw FTQError.io("io.not-found", file: path, "no such file or directory")
        default:
            let base = splitPath(path).base
            if base == Manifest.directoryName || base.hasByteSuffix(Manifest.fileSuffix) { return .manifest(path) }
            if base == "SHA256SUMS" || base.hasByteSuffix(".sha256") || base.hasByteSuffix(".sha256sum") { return .checksums(path) }
            if PathKind.of(path + Manifest.fileSuffix) != .missing { return .manifest(path + Manifest.fileSuffix) }
            if PathKind.of(path + ".sha256") != .missing { return .checksums(path + ".sha256") }
            throw FTQError.io("io.not-found", file: path, "no \(base)\(Manifest.fileSuffix) or \(base).sha256 beside it to check against")
        }
    }

    func run() throws {
        let verifier = Verifier(threads: threads.count)
        let report: Verifier.Report
        switch try resolve() {
        case let .manifest(m): report = try verifier.verify(manifestPath: m)
        case let .checksums(c): report = try verifier.verify(checksumPath: c)
        }
        if json {
            try printOut(JSONText.serialize(Self.json(report), indent: 2) + "\n")
        } else {
            try printOut(Self.text(report))
        }
        if !report.ok { throw ExitCode(1) }
    }

    static func text(_ r: Verifier.Report) -> String {
        var out = ""
        for f in r.files {
            let name = TerminalText.escaped(f.path, limit: 1000)
            switch f.status {
            case .ok: out += "OK       \(name)\n"
            case .missing: out += "MISSING  \(name)\n"
            case .unreadable: out += "FAILED   \(name): \(TerminalText.escaped(f.detail ?? "cannot be read", limit: 500))\n"
            case .differs:
                var why: [String] = []
                if let d = f.detail { why.append(d) }
                if let e = f.expectedSize, let a = f.actualSize, e != a { why.append("size \(a), expected \(e)") }
                if f.actualSHA256 != nil && f.detail == nil { why.append("sha256 differs") }
                out += "FAILED   \(name): \(why.joined(separator: ", "))\n"
                for t in f.tensorsDiffering { out += "         tensor \"\(TerminalText.escaped(t, limit: 200))\" differs\n" }
                for t in f.tensorsMissing { out += "         tensor \"\(TerminalText.escaped(t, limit: 200))\" lies past the end of the file\n" }
                if f.otherBytesDiffer { out += "         bytes outside tensor data (header, metadata or padding) differ\n" }
            }
        }
        for e in r.extra { out += "EXTRA    \(TerminalText.escaped(e, limit: 1000))\n" }
        let bad = r.files.filter { $0.status != .ok }.count
        out += r.ok ? "verified \(r.files.count) files against \(TerminalText.escaped(r.against, limit: 1000))\n"
            : "verify failed: \(bad) of \(r.files.count) files differ or are missing, \(r.extra.count) extra\n"
        return out
    }

    static func json(_ r: Verifier.Report) -> JSONValue {
        .object([
            ("ok", .bool(r.ok)),
            ("against", .string(r.against)),
            ("files", .array(r.files.map { f in
                .object([
                    ("path", .string(f.path)),
                    ("status", .string(f.status.rawValue)),
                    ("listed_in", .string(f.source)),
                    ("expected_size", f.expectedSize.map { .int($0) } ?? .null),
                    ("actual_size", f.actualSize.map { .int($0) } ?? .null),
                    ("expected_sha256", .string(f.expectedSHA256)),
                    ("actual_sha256", f.actualSHA256.map { .string($0) } ?? .null),
                    ("tensors_differing", .array(f.tensorsDiffering.map { .string($0) })),
                    ("tensors_missing", .array(f.tensorsMissing.map { .string($0) })),
                    ("other_bytes_differ", .bool(f.otherBytesDiffer)),
                    ("detail", f.detail.map { .string($0) } ?? .null),
                ])
            })),
            ("extra", .array(r.extra.map { .string($0) })),
        ])
    }
}
