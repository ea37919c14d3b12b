#if canImport(Glibc)
import Glibc
#endif
import FTQCore
import FTQFormats

/// One file unpacked from a pack.
public struct UnpackedFile: Sendable {
    /// The path written (the output directory joined with `name`).
    public var path: String
    public var name: String
    public var size: Int
    public var sha256: String
    /// The digest of the bytes outside the tensors (nil for a file without tensors).
    public var otherSHA256: String?
    public var tensors: [Manifest.Tensor]
}

/// What unpacking produced.
public struct UnpackResult: Sendable {
    public var files: [UnpackedFile]
    /// The pack's own SHA-256, when asked for.
    public var packSHA256: String?
    /// CPU seconds spent in zstd and byte planes (not in checking digests), summed over the
    /// threads.
    public var decompressSeconds: Double
}

/// Reads `.ftqz` packs (formats/ftqz.md, "Reading"). Opening one checks its header, its
/// trailer and its index (SHA-256, then every rule of "Index"); unpacking checks every frame
/// and every file's SHA-256.
public final class PackReader: @unchecked Sendable {
    public let file: InputFile
    public let index: PackIndex
    /// The bytes of the index and where it starts.
    let indexBytes: [UInt8]
    let indexOffset: Int

    /// Opens and checks a pack: R1-R6 of formats/ftqz.md. Errors name the pack.
    public init(_ path: String) throws {
        let file = try InputFile(path)
        self.file = file
        do {
            (indexOffset, indexBytes, index) = try Self.readIndex(file)
        } catch let e as FTQError {
            throw e.inFile(path)
        }
    }

    static func readIndex(_ file: InputFile) throws -> (Int, [UInt8], PackIndex) {
        let size = file.size
        let minimum = PackFormat.headerSize + PackFormat.trailerSize
        // R1: the header.
        let head = try file.read(at: 0, count: min(size, PackFormat.headerSize))
        guard head.count >= 8, Array(head[0..<8]) == PackFormat.magic else {
            if head.count < 8 && head == Array(PackFormat.magic.prefix(head.count)) {
                throw FTQError.invalid("ftqz.truncated", "the file is \(size) bytes, too short for a pack (truncated?)")
            }
            throw FTQError.invalid("ftqz.bad-magic", "not an ftq pack (no \\x89FTQZ magic)")
        }
        guard size >= minimum else {
            throw FTQError.invalid("ftqz.truncated", "the file is \(size) bytes, too short for a pack (truncated?)")
        }
        let version = PackFormat.readLE32(head[8..<12])
        guard version == PackFormat.version else {
            throw FTQError.invalid("ftqz.version", "pack format version \(version) is not supported (this ftq reads version \(PackFormat.version))")
        }
        guard PackFormat.readLE32(head[12..<16]) == 0 else {
            throw FTQError.invalid("ftqz.bad-header", "the header's flags are not zero")
        }
        // R2: the trailer.
        let tail = try file.read(at: size - PackFormat.trailerSize, count: PackFormat.trailerSize)
        guard Array(tail[48..<56]) == PackFormat.endMagic else {
            throw FTQError.invalid("ftqz.truncated", "the pack does not end with its trailer (truncated, not completely written, or followed by other bytes?)")
        }
        let offsetField = PackFormat.readLE64(tail[0..<8]), lengthField = PackFormat.readLE64(tail[8..<16])
        // R3: the index lies between the frames and the trailer, within the cap.
        guard lengthField <= UInt64(PackFormat.maxIndexSize) else {
            throw FTQError.invalid("ftqz.index-too-large", "the trailer gives an index of \(lengthField) bytes; at most \(PackFormat.maxIndexSize) are accepted")
        }
        let indexEnd = UInt64(size - PackFormat.trailerSize)
        guard offsetField >= UInt64(PackFormat.headerSize), offsetField <= indexEnd, indexEnd - offsetField == lengthField else {
            throw FTQError.invalid("ftqz.bad-trailer", "the trailer places the index at bytes \(offsetField)+\(lengthField), but it must end at byte \(indexEnd) (truncated or damaged?)")
        }
        let offset = Int(offsetField), length = Int(lengthField)
        // R4: the index's SHA-256.
        let bytes = try file.read(at: offset, count: length)
        let h = SHA256Hasher()
        h.update(bytes)
        guard hexBytes(h.finalizeHex()) == Array(tail[16..<48]) else {
            throw FTQError(.checkFailed, "ftqz.checksum", "the index does not match its SHA-256 in the trailer: the pack is corrupted")
        }
        // R5, R6: the index's contents.
        let index = try PackIndex.parse(bytes, frameBytes: offset - PackFormat.headerSize)
        return (offset, bytes, index)
    }

    struct FrameJob {
        var file: Int
        var number: Int
        var packOffset: Int
        var size: Int
        var compressedSize: Int
        var planes: Int
        var sha256: String
    }

    final class Slot: @unchecked Sendable {
        let compressed: UnsafeMutableRawBufferPointer
        let planes: UnsafeMutableRawBufferPointer
        let out: UnsafeMutableRawBufferPointer
        init(frameBytes: Int, compressedBytes: Int, planes: Bool) {
            compressed = .allocate(byteCount: max(compressedBytes, 1), alignment: 64)
            self.planes = .allocate(byteCount: planes ? max(frameBytes, 1) : 1, alignment: 64)
            out = .allocate(byteCount: max(frameBytes, 1), alignment: 64)
        }
        deinit { compressed.deallocate(); planes.deallocate(); out.deallocate() }
    }

    /// Checks every frame and every file's SHA-256 without writing anything.
    public func check(threads: Int) throws {
        _ = try unpack(into: nil, threads: threads, progress: Progress(label: "check", totalBytes: 0, quiet: true), hashPack: false)
    }

    /// Unpacks every file into `dir`, an existing directory in which none of the names
    /// exists (a staging directory); with no `dir`, only checks. Each file is written under a
    /// temporary name and renamed only once its SHA-256 matches the index. With `hashPack`,
    /// the pack's own SHA-256 is computed from the bytes read (no second read).
    public func unpack(into dir: String?, threads: Int, progress: Progress, hashPack: Bool) throws -> UnpackResult {
        var jobs: [FrameJob] = []
        var offset = PackFormat.headerSize
        var largest = 0, largestCompressed = 0, anyPlanes = false
        for (k, f) in index.files.enumerated() {
            for (j, fr) in f.frames.enumerated() {
                jobs.append(FrameJob(file: k, number: j, packOffset: offset, size: fr.size, compressedSize: fr.compressedSize,
                                     planes: fr.planes, sha256: fr.sha256))
                offset += fr.compressedSize
                largest = max(largest, fr.size)
                largestCompressed = max(largestCompressed, fr.compressedSize)
                anyPlanes = anyPlanes || fr.planes > 1
            }
        }
        let packHasher = hashPack ? SHA256Hasher() : nil
        packHasher?.update(try file.read(at: 0, count: PackFormat.headerSize))

        let threads = max(1, threads)
        let slots = (0..<(threads == 1 ? 1 : 2 * threads)).map { _ in
            Slot(frameBytes: largest, compressedBytes: largestCompressed, planes: anyPlanes)
        }
        let decompressors = (0..<threads).map { _ in ZstdDecompressor() }
        let timer = WorkTimer()
        let pack = file
        let files = index.files
        var results: [UnpackedFile] = []
        var current = -1
        var out: OutputFile?
        var hasher: SHA256Hasher?
        defer { out?.abort() }

        // Finishes every file before `k` (a file without frames is created empty here) and
        // opens file `k`.
        func advance(to k: Int) throws {
            while current < k {
                if current >= 0 {
                    let f = files[current]
                    let digest = try out?.finish() ?? hasher?.finalizeHex() ?? ""
                    guard digest == f.sha256 else {
                        throw FTQError(.checkFailed, "ftqz.checksum", file: pack.path,
                                       "\"\(f.name)\" does not match its SHA-256 in the index: the pack is corrupted")
                    }
                    try out?.commit()
                    out = nil
                    results.append(UnpackedFile(path: joinPath(dir ?? "", f.name), name: f.name, size: f.size, sha256: f.sha256,
                                                otherSHA256: f.otherSHA256, tensors: f.tensors))
                }
                current += 1
                if current < files.count {
                    if let dir {
                        out = try OutputFile(joinPath(dir, files[current].name), overwrite: false, digest: { SHA256Hasher() })
                    } else {
                        hasher = SHA256Hasher()
                    }
                }
            }
        }

        let jobList = jobs
        try runOrdered(count: jobList.count, threads: threads, slots: slots, work: { i, slot, worker in
            let job = jobList[i]
            let frame = UnsafeMutableRawBufferPointer(rebasing: slot.compressed[0..<job.compressedSize])
            try pack.read(into: frame, at: job.packOffset)
            func corrupt(_ code: String, _ why: String) -> FTQError {
                FTQError(.checkFailed, code, file: pack.path,
                         "frame \(job.number) of \"\(files[job.file].name)\" (at byte \(job.packOffset)) \(why): the pack is corrupted")
            }
            // R7: the frame's bytes match their SHA-256 before zstd sees them.
            let h = SHA256Hasher()
            h.update(UnsafeRawBufferPointer(frame))
            guard h.finalizeHex() == job.sha256 else { throw corrupt("ftqz.checksum", "does not match its SHA-256 in the index") }
            // R8: the frame's form, then zstd's own checks (block structure, content checksum).
            let start = WorkTimer.now()
            if let why = ZstdFrame.check(UnsafeRawBufferPointer(frame), size: job.size) { throw corrupt("ftqz.frame", "is damaged: \(why)") }
            let target = job.planes > 1 ? slot.planes.baseAddress! : slot.out.baseAddress!
            if let why = decompressors[worker].decompress(UnsafeRawBufferPointer(frame), size: job.size, into: target) {
                throw corrupt("ftqz.frame", "is damaged: \(why)")
            }
            if job.planes > 1 {
                BytePlanes.join(slot.planes.baseAddress!, slot.out.baseAddress!, count: job.size, planes: job.planes)
            }
            timer.add(WorkTimer.now() - start)
        }, consume: { i, slot in
            let job = jobList[i]
            try advance(to: job.file)
            packHasher?.update(UnsafeRawBufferPointer(rebasing: slot.compressed[0..<job.compressedSize]))
            let bytes = UnsafeRawBufferPointer(rebasing: slot.out[0..<job.size])
            if let out { try out.write(bytes) } else { hasher?.update(bytes) }
            progress.advance(job.size)
        })
        // R9: every file's SHA-256, checked as it is closed.
        try advance(to: files.count)
        packHasher?.update(indexBytes)
        packHasher?.update(try file.read(at: file.size - PackFormat.trailerSize, count: PackFormat.trailerSize))
        return UnpackResult(files: results, packSHA256: packHasher?.finalizeHex(), decompressSeconds: timer.total)
    }
}

/// Unpacking into a directory that appears complete or not at all (formats/ftqz.md,
/// "Unpacking").
public enum PackExtractor {
    /// The state of an output directory: refused unless missing, empty, or `overwrite`.
    public static func checkOutput(_ dir: String, overwrite: Bool) throws -> Bool {
        switch PathKind.of(dir) {
        case .missing: return false
        case .directory:
            let empty = try listDirectory(dir).isEmpty
            if !overwrite && !empty {
                throw FTQError.usage("output.exists", "\(dir) already exists and is not empty (use --force to unpack into it)")
            }
            return true
        case let .inaccessible(reason):
            throw FTQError.io("io.open", file: dir, "cannot check the output path: \(reason)")
        default:
            throw FTQError.usage("output.exists", "\(dir) exists and is not a directory")
        }
    }

    /// Unpacks `reader` into `dir` through a staging directory `.BASE.PID.ftq-tmp` beside
    /// it: the files, then what `sidecars` makes from them (a manifest, checksums), then the
    /// staging directory is renamed to `dir` (or, when `dir` exists, its files are moved
    /// into it). On any error the staging directory is removed and `dir` is untouched.
    public static func extract(_ reader: PackReader, to dir: String, overwrite: Bool, threads: Int, quiet: Bool,
                               hashPack: Bool,
                               sidecars: (UnpackResult) throws -> [(name: String, bytes: [UInt8])]) throws -> UnpackResult {
        let trimmed = dir.count > 1 && dir.hasByteSuffix("/") ? String(dir.dropLast()) : dir
        let existed = try checkOutput(trimmed, overwrite: overwrite)
        let (parent, base) = splitPath(trimmed)
        let stage = joinPath(parent, ".\(base).\(getpid()).ftq-tmp")
        guard mkdir(stage, 0o755) == 0 else {
            throw FTQError.io("io.create", file: stage, "cannot create a staging directory: \(systemError(errno))")
        }
        TempFileRegistry.shared.addDirectory(stage)
        defer { removeStage(stage); TempFileRegistry.shared.removeDirectory(stage) }

        let progress = Progress(label: "unpack", totalBytes: reader.index.totalSize, quiet: quiet)
        var result = try reader.unpack(into: stage, threads: threads, progress: progress, hashPack: hashPack)
        progress.finish()
        var names = result.files.map(\.name)
        for (name, bytes) in try sidecars(result) {
            let f = try OutputFile(joinPath(stage, name), overwrite: false)
            do { try f.write(bytes); try f.commit() } catch { f.abort(); throw error }
            names.append(name)
        }
        // Install.
        if !existed {
            guard rename(stage, trimmed) == 0 else {
                throw FTQError.io("io.rename", file: trimmed, "cannot move the unpacked files into place: \(systemError(errno))")
            }
        } else {
            for name in names where rename(joinPath(stage, name), joinPath(trimmed, name)) != 0 {
                throw FTQError.io("io.rename", file: joinPath(trimmed, name), "cannot move the unpacked file into place: \(systemError(errno))")
            }
        }
        syncDirectory(parent.isEmpty ? "." : parent)
        syncDirectory(trimmed)
        for k in result.files.indices { result.files[k].path = joinPath(trimmed, result.files[k].name) }
        return result
    }

    static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY)
        if fd >= 0 { _ = fsync(fd); close(fd) }
    }

    /// Removes a staging directory and the plain files in it.
    static func removeStage(_ dir: String) {
        if let names = try? listDirectory(dir) {
            for n in names { unlink(joinPath(dir, n)) }
        }
        rmdir(dir)
    }
}
