import FTQArtifacts
import FTQCore
import FTQFormats

/// Where a command's manifest and checksums go, and the paths written into them.
enum ArtifactPaths {
    /// `path` relative to the manifest's directory (formats/manifest.md, "Paths"); the path as
    /// given when it cannot be resolved.
    static func relative(_ path: String, to manifestDir: String) -> String {
        RelativePath.of(path, from: manifestDir) ?? path
    }

    /// Sidecars whose manifest records `command`, `options`, the inputs `inputPaths` (hashed on
    /// the other cores while the command runs when `threads` > 1) and the files written.
    static func manifestSidecars(command: [String], options: [(String, JSONValue)], inputPaths: [String],
                                 manifestDirectory: String, threads: Int, report: QuantizationReport? = nil) -> Sidecars {
        let inputHashes = threads > 1 ? FileHashing.Background(inputPaths, threads: threads - 1) : nil
        return sidecars(manifestDirectory: manifestDirectory) { written in
            let digests = try inputHashes?.wait() ?? FileHashing.hash(inputPaths, threads: 1)
            return Manifest(toolVersion: FTQ.version, command: command, options: options,
                            inputs: digests.map { .init(path: relative($0.path, to: manifestDirectory), size: $0.size, sha256: $0.sha256) },
                            outputs: written.map(Manifest.Output.init),
                            report: report.map { Compare.reportJSON($0.comparison) })
        }
    }

    /// The manifest and checksum sidecars of an output: `X.manifest.json` and `X.sha256` beside
    /// a file `X`; `ftq-manifest.json` and `SHA256SUMS` inside a directory. The checksum file
    /// lists the outputs and the manifest itself.
    static func sidecars(manifestDirectory: String,
                         manifest: @escaping @Sendable ([WrittenFile]) throws -> Manifest) -> Sidecars {
        Sidecars(fileSuffixes: [Manifest.fileSuffix, ".sha256"], directoryNames: [Manifest.directoryName, "SHA256SUMS"]) { written, names in
            let m = try manifest(written)
            let manifestBytes = m.bytes
            let manifestName = names[0]
            let h = SHA256Hasher()
            h.update(manifestBytes)
            var entries = written.map { ChecksumList.Entry(sha256: $0.sha256 ?? "", path: $0.name) }
            entries.append(ChecksumList.Entry(sha256: h.finalizeHex(), path: manifestName))
            return [manifestBytes, ChecksumList.format(entries)]
        }
    }
}

extension Manifest.Output {
    /// A manifest entry for a file the converter wrote and hashed.
    init(_ w: WrittenFile) {
        self.init(path: w.name, size: w.bytes, sha256: w.sha256 ?? "", otherSHA256: w.tensors.isEmpty ? nil : w.otherSHA256,
                  tensors: w.tensors.map { .init(name: $0.name, dtype: $0.dtype, shape: $0.shape, offset: $0.offset,
                                                 nbytes: $0.nbytes, sha256: $0.sha256 ?? "") })
    }
}
