import FTQCore
import FTQFormats

/// Checks files against a manifest or a checksum list (formats/manifest.md, "Verifying").
public struct Verifier {
    /// What was found for one file.
    public struct FileResult: Sendable {
        public enum Status: String, Sendable { case ok, missing, differs, unreadable }
        public var path: String
        public var status: Status
        public var expectedSize: Int?
        public var actualSize: Int?
        public var expectedSHA256: String
        public var actualSHA256: String?
        /// Tensors whose data differs from the manifest (in manifest order).
        public var tensorsDiffering: [String] = []
        /// Tensors whose data lies beyond the end of the file.
        public var tensorsMissing: [String] = []
        /// True when every tensor matches but the file does not: the header, metadata or padding differ.
        public var otherBytesDiffer = false
        /// Which list named the file: the manifest or a checksum file.
        public var source: String
        public var detail: String?
    }

    public struct Report: Sendable {
        /// The manifest or checksum file checked against, as given.
        public var against: String
        public var files: [FileResult]
        /// Regular files in an output directory that no manifest lists.
        public var extra: [String]
        public var ok: Bool { extra.isEmpty && files.allSatisfy { $0.status == .ok } }
    }

    public let threads: Int
    public init(threads: Int) { self.threads = threads }

    /// Verifies against a manifest file: every output's presence, size and SHA-256 and, for a
    /// file that differs, every tensor; plus the checksum file beside it when there is one,
    /// and, for a directory manifest, files that nothing lists.
    public func verify(manifestPath: String) throws -> Report {
        let mf = try InputFile(manifestPath)
        guard mf.size <= Limits.manifestBytes else {
            throw FTQError.invalid("manifest.too-large", file: manifestPath, "manifest is over 1 GiB")
        }
        let manifest: Manifest
        do { manifest = try Manifest.parse(try mf.read(at: 0, count: mf.size)) } catch let e as FTQError { throw e.inFile(manifestPath) }
        let (dir, base) = splitPath(manifestPath)
        let isDirectoryManifest = base == Manifest.directoryName
        // The checksum file ftq writes beside this manifest (nil for a manifest named otherwise).
        var checksumPath: String? = nil
        if isDirectoryManifest { checksumPath = joinPath(dir, "SHA256SUMS") }
        else if base.hasByteSuffix(Manifest.fileSuffix) {
            checksumPath = joinPath(dir, String(base.dropLast(Manifest.fileSuffix.count)) + ".sha256")
        }

        let expected = manifest.outputs.map { (path: $0.path, size: $0.size, sha256: $0.sha256) }
        var results = try check(expected, in: dir, source: splitPath(manifestPath).base)
        for (k, o) in manifest.outputs.enumerated() where results[k].status == .differs {
            locateDifferences(&results[k], output: o, path: joinPath(dir, o.path))
        }
        if let checksumPath, PathKind.of(checksumPath) == .missing {
            // ftq writes the checksum file with the manifest: its absence is a difference.
            results.append(FileResult(path: splitPath(checksumPath).base, status: .missing, expectedSHA256: "",
                                      source: splitPath(manifestPath).base, detail: "the checksum file written with the manifest is missing"))
        } else if let checksumPath {
            let listedEntries: [ChecksumList.Entry]
            do { listedEntries = try ChecksumList.parse(try readSmall(checksumPath)) } catch let e as FTQError { throw e.inFile(checksumPath) }
            let listed = listedEntries.map { (path: $0.path, size: Int?.none, sha256: $0.sha256) }
            let listedNames = Set(listed.map { ExactName($0.path) })
            for o in manifest.outputs where !listedNames.contains(ExactName(o.path)) {
                results.append(FileResult(path: o.path, status: .differs, expectedSHA256: o.sha256, actualSHA256: nil,
                                          source: splitPath(checksumPath).base, detail: "missing from the checksum file"))
            }
            let already = Set(manifest.outputs.map { ExactName($0.path) })
            let others = listed.filter { !already.contains(ExactName($0.path)) }
            results += try check(others, in: dir, source: splitPath(checksumPath).base)
            // The manifest's outputs also appear in the checksum file: the two must agree.
            for l in listed where already.contains(ExactName(l.path)) {
                let o = manifest.outputs.first { ExactName($0.path) == ExactName(l.path) }!
                if o.sha256 != l.sha256 {
                    results.append(FileResult(path: l.path, status: .differs, expectedSHA256: l.sha256,
                                              actualSHA256: o.sha256, source: splitPath(checksumPath).base,
                                              detail: "the checksum file and the manifest disagree"))
                }
            }
        }
        var extra: [String] = []
        if isDirectoryManifest {
            var listed = Set(manifest.outputs.map { ExactName($0.path) })
            listed.insert(ExactName(Manifest.directoryName))
            listed.insert(ExactName("SHA256SUMS"))
            for name in try listDirectory(dir.isEmpty ? "." : dir).sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) })
            where !listed.contains(ExactName(name)) && PathKind.of(joinPath(dir, name)) == .regularFile {
                extra.append(name)
            }
        }
        return Report(against: manifestPath, files: results, extra: extra)
    }

    /// Verifies against a `sha256sum`-format checksum file (names relative to its directory).
    public func verify(checksumPath: String) throws -> Report {
        let entries: [ChecksumList.Entry]
        do { entries = try ChecksumList.parse(try readSmall(checksumPath)) } catch let e as FTQError { throw e.inFile(checksumPath) }
        let (dir, base) = splitPath(checksumPath)
        let results = try check(entries.map { (path: $0.path, size: Int?.none, sha256: $0.sha256) }, in: dir, source: base)
        return Report(against: checksumPath, files: results, extra: [])
    }

    func readSmall(_ path: String) throws -> [UInt8] {
        let f = try InputFile(path)
        guard f.size <= Limits.manifestBytes else { throw FTQError.invalid("checksums.too-large", file: path, "over 1 GiB") }
        return try f.read(at: 0, count: f.size)
    }

    /// Presence, size and SHA-256 of each file (hashed `threads` at a time).
    func check(_ expected: [(path: String, size: Int?, sha256: String)], in dir: String, source: String) throws -> [FileResult] {
        var results: [FileResult] = []
        var toHash: [(Int, String)] = []
        for (k, e) in expected.enumerated() {
            let full = joinPath(dir, e.path)
            var r = FileResult(path: e.path, status: .ok, expectedSize: e.size, expectedSHA256: e.sha256, source: source)
            switch PathKind.of(full) {
            case .missing:
                r.status = .missing
            case .regularFile:
                toHash.append((k, full))
            default:
                r.status = .unreadable
                r.detail = "not a regular file"
            }
            results.append(r)
        }
        let digests = try FileHashing.hashAll(toHash.map(\.1), threads: threads)
        for ((k, _), d) in zip(toHash, digests) {
            switch d {
            case let .success(fd):
                results[k].actualSize = fd.size
                results[k].actualSHA256 = fd.sha256
                if fd.sha256 != results[k].expectedSHA256 || (results[k].expectedSize.map { $0 != fd.size } ?? false) {
                    results[k].status = .differs
                }
            case let .failure(e):
                results[k].status = .unreadable
                results[k].detail = (e as? FTQError)?.message ?? "\(e)"
            }
        }
        return results
    }

    /// For a file that differs: which tensors (by the manifest's offsets, so a corrupted header
    /// does not hide them), and whether anything else differs.
    func locateDifferences(_ r: inout FileResult, output o: Manifest.Output, path: String) {
        guard !o.tensors.isEmpty, let file = try? InputFile(path) else { return }
        var inFile: [Manifest.Tensor] = []
        for t in o.tensors {
            let (end, overflow) = t.offset.addingReportingOverflow(t.nbytes)
            if overflow || end > file.size { r.tensorsMissing.append(t.name) } else { inFile.append(t) }
        }
        let digests = (try? FileHashing.ranges(inFile.map { (file, $0.offset, $0.nbytes) }, threads: threads)) ?? []
        for (t, d) in zip(inFile, digests) where d != t.sha256 { r.tensorsDiffering.append(t.name) }
        if let expected = o.otherSHA256 {
            // The bytes between and around the tensors, in file order.
            let h = SHA256Hasher()
            let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 64)
            defer { buf.deallocate() }
            var pos = 0
            let spans = o.tensors.map { ($0.offset, $0.nbytes) }.sorted { $0.0 < $1.0 } + [(file.size, 0)]
            for (start, n) in spans {
                let s = min(start, file.size)
                while pos < s {
                    let len = min(buf.count, s - pos)
                    let slice = UnsafeMutableRawBufferPointer(rebasing: buf[0..<len])
                    guard (try? file.read(into: slice, at: pos)) != nil else { r.otherBytesDiffer = true; return }
                    h.update(UnsafeRawBufferPointer(slice))
                    pos += len
                }
                pos = max(pos, min(file.size, start &+ n))
            }
            r.otherBytesDiffer = h.finalizeHex() != expected
        } else {
            r.otherBytesDiffer = r.tensorsDiffering.isEmpty && r.tensorsMissing.isEmpty
        }
    }
}
