#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import FTQCore
import FTQFormats

/// One file to pack: where to read it and the name it gets in the pack.
public struct PackInput: Sendable {
    public var path: String
    public var name: String
    public init(path: String, name: String) { self.path = path; self.name = name }
}

/// What writing a pack produced.
public struct PackWriteResult: Sendable {
    public var index: PackIndex
    /// The paths the files were read from, in index order.
    public var paths: [String]
    /// Bytes written to the pack.
    public var packBytes: Int
    /// CPU seconds spent in byte planes and zstd, summed over the threads.
    public var compressSeconds: Double
}

/// Writes `.ftqz` packs (formats/ftqz.md, "Writing").
public enum PackWriter {
    /// A run of bytes of one file stored the same way: as they are (`planes` 1) or as byte
    /// planes of `planes`-byte elements.
    public struct Region: Sendable, Equatable {
        public var offset: Int
        public var length: Int
        public var planes: Int
        public init(offset: Int, length: Int, planes: Int) { self.offset = offset; self.length = length; self.planes = planes }
    }

    /// A model file's tensors as the index lists them (digests still to compute), and the
    /// floating-point ones as (offset, nbytes, element size).
    struct ModelLayout {
        var tensors: [Manifest.Tensor] = []
        var floats: [(offset: Int, nbytes: Int, planes: Int)] = []
    }

    /// The tensors of a safetensors or GGUF file, read with ftq's validating parsers; nil for
    /// any other file, or one they refuse (it is packed as plain bytes).
    static func layout(of file: InputFile, name: String) -> ModelLayout? {
        func planes(_ d: DType?) -> Int {
            switch d {
            case .BF16?, .F16?: return 2
            case .F32?: return 4
            default: return 1
            }
        }
        var out = ModelLayout()
        if name.hasByteSuffix(".safetensors") {
            guard let h = try? SafetensorsHeader.read(file) else { return nil }
            for e in h.entries {
                let off = h.dataStart + e.begin, n = e.end - e.begin
                out.tensors.append(Manifest.Tensor(name: e.name, dtype: e.dtype.rawValue, shape: e.shape, offset: off, nbytes: n, sha256: ""))
                if planes(e.dtype) > 1 && n > 0 { out.floats.append((off, n, planes(e.dtype))) }
            }
            return out
        }
        let magic = (try? file.read(at: 0, count: min(4, file.size))) ?? []
        if name.hasByteSuffix(".gguf") || magic == Array("GGUF".utf8) {
            guard let h = try? GGUFReader.readHeader(file) else { return nil }
            for t in h.tensors {
                out.tensors.append(Manifest.Tensor(name: t.name, dtype: t.type.name, shape: t.shape, offset: t.offset, nbytes: t.nbytes, sha256: ""))
                if planes(t.type.plainDType) > 1 && t.nbytes > 0 { out.floats.append((t.offset, t.nbytes, planes(t.type.plainDType))) }
            }
            // The manifest lists tensors in file order (ascending offset); GGUF may list them
            // otherwise. The sort is stable.
            out.tensors = out.tensors.enumerated().sorted { ($0.element.offset, $0.offset) < ($1.element.offset, $1.offset) }.map(\.element)
            return out
        }
        return nil
    }

    /// Cuts a file into regions: byte planes for floating-point tensor data, bytes as they
    /// are elsewhere (formats/ftqz.md, "Byte planes"). Consecutive tensors of the same element
    /// size share a region, across gaps of at most 4096 bytes that are a whole number of
    /// elements (GGUF alignment padding). Tensors that overlap, or lie outside the file, are
    /// left as plain bytes.
    public static func regions(fileSize: Int, floats: [(offset: Int, nbytes: Int, planes: Int)]) -> [Region] {
        var runs: [Region] = []
        var end = 0
        for f in floats.sorted(by: { $0.offset < $1.offset }) {
            let (fEnd, o) = f.offset.addingReportingOverflow(f.nbytes)
            guard !o, f.offset >= end, fEnd <= fileSize, f.nbytes % f.planes == 0 else { continue }
            if var last = runs.last, last.planes == f.planes {
                let gap = f.offset - end
                if gap <= maxGap && gap % f.planes == 0 {
                    last.length = fEnd - last.offset
                    runs[runs.count - 1] = last
                    end = fEnd
                    continue
                }
            }
            runs.append(Region(offset: f.offset, length: f.nbytes, planes: f.planes))
            end = fEnd
        }
        var out: [Region] = []
        var pos = 0
        for r in runs {
            if r.offset > pos { out.append(Region(offset: pos, length: r.offset - pos, planes: 1)) }
            out.append(r)
            pos = r.offset + r.length
        }
        if pos < fileSize { out.append(Region(offset: pos, length: fileSize - pos, planes: 1)) }
        return out
    }

    static let maxGap = PackFormat.maxAbsorbedGap

    struct FrameJob {
        var file: Int
        var offset: Int
        var length: Int
        var planes: Int
    }

    /// Buffers for one frame in flight.
    final class Slot: @unchecked Sendable {
        let raw: UnsafeMutableRawBufferPointer
        let planes: UnsafeMutableRawBufferPointer
        let compressed: UnsafeMutableRawBufferPointer
        var compressedSize = 0
        var compressedSHA256 = ""
        init(frameBytes: Int) {
            raw = .allocate(byteCount: max(frameBytes, 1), alignment: 64)
            planes = .allocate(byteCount: max(frameBytes, 1), alignment: 64)
            compressed = .allocate(byteCount: ZstdFrame.compressBound(frameBytes), alignment: 64)
        }
        deinit { raw.deallocate(); planes.deallocate(); compressed.deallocate() }
    }

    /// Hashes the tensors of one file, and its bytes outside them, as the file's bytes go by
    /// in order.
    final class TensorHasher {
        private let ranges: [(offset: Int, nbytes: Int)]
        private let order: [Int]
        private var hashers: [SHA256Hasher]
        private var next = 0
        private var active: [Int] = []
        /// The bytes outside every tensor, as sorted disjoint spans, and their digest.
        private let gaps: [(start: Int, end: Int)]
        private var gap = 0
        private let other = SHA256Hasher()

        init(_ tensors: [Manifest.Tensor], fileSize: Int) {
            let r = tensors.map { (offset: $0.offset, nbytes: $0.nbytes) }
            ranges = r
            order = r.indices.sorted { r[$0].offset < r[$1].offset }
            hashers = tensors.map { _ in SHA256Hasher() }
            var gaps: [(start: Int, end: Int)] = []
            var pos = 0
            for k in order {
                let s = min(r[k].offset, fileSize)
                if pos < s { gaps.append((pos, s)) }
                pos = max(pos, min(fileSize, r[k].offset &+ r[k].nbytes))
            }
            if pos < fileSize { gaps.append((pos, fileSize)) }
            self.gaps = gaps
        }

        func update(_ bytes: UnsafeRawBufferPointer, at pos: Int) {
            let end = pos + bytes.count
            while next < order.count && ranges[order[next]].offset < end {
                active.append(order[next])
                next += 1
            }
            for t in active {
                let lo = max(ranges[t].offset, pos), hi = min(ranges[t].offset + ranges[t].nbytes, end)
                if lo < hi { hashers[t].update(UnsafeRawBufferPointer(rebasing: bytes[(lo - pos)..<(hi - pos)])) }
            }
            active.removeAll { ranges[$0].offset + ranges[$0].nbytes <= end }
            while gap < gaps.count && gaps[gap].start < end {
                let lo = max(gaps[gap].start, pos), hi = min(gaps[gap].end, end)
                if lo < hi { other.update(UnsafeRawBufferPointer(rebasing: bytes[(lo - pos)..<(hi - pos)])) }
                if gaps[gap].end > end { break }
                gap += 1
            }
        }

        /// The tensors' digests in the order given, and the digest of the other bytes.
        func finish() -> (tensors: [String], other: String) { (hashers.map { $0.finalizeHex() }, other.finalizeHex()) }
    }

    /// Writes a pack of `inputs` (in the order given) to `out`, which must be empty.
    public static func write(_ inputs: [PackInput], to out: OutputFile, level: Int, threads: Int,
                             progress: Progress) throws -> PackWriteResult {
        precondition(PackFormat.levels.contains(level))
        var sizes: [Int] = []
        var layouts: [ModelLayout] = []
        var jobs: [FrameJob] = []
        var largest = 0
        for (k, input) in inputs.enumerated() {
            let f = try InputFile(input.path)
            let layout = layout(of: f, name: input.name) ?? ModelLayout()
            sizes.append(f.size)
            layouts.append(layout)
            for r in regions(fileSize: f.size, floats: layout.floats) {
                var done = 0
                while done < r.length {
                    let n = min(PackFormat.frameSize, r.length - done)
                    jobs.append(FrameJob(file: k, offset: r.offset + done, length: n, planes: r.planes))
                    largest = max(largest, n)
                    done += n
                }
            }
        }

        try out.write(PackFormat.header)
        var packBytes = PackFormat.headerSize
        let threads = max(1, threads)
        let slots = (0..<(threads == 1 ? 1 : 2 * threads)).map { _ in Slot(frameBytes: largest) }
        let compressors = (0..<threads).map { _ in ZstdCompressor(level: level) }
        let timer = WorkTimer()

        let fileList = OpenFiles(paths: inputs.map(\.path), sizes: sizes)
        var entries: [PackIndex.File] = []
        var current = -1
        var fileHasher = SHA256Hasher()
        var tensorHasher = TensorHasher([], fileSize: 0)
        var frames: [PackIndex.Frame] = []

        // Closes every file before `file` (files without frames are opened and closed here).
        func advance(to file: Int) {
            while current < file {
                if current >= 0 {
                    var tensors = layouts[current].tensors
                    let digests = tensorHasher.finish()
                    for (j, d) in digests.tensors.enumerated() { tensors[j].sha256 = d }
                    entries.append(PackIndex.File(name: inputs[current].name, size: sizes[current], sha256: fileHasher.finalizeHex(),
                                                  otherSHA256: tensors.isEmpty ? nil : digests.other, tensors: tensors, frames: frames))
                }
                if current >= 0 { fileList.close(current) }
                current += 1
                if current < inputs.count {
                    fileHasher = SHA256Hasher()
                    tensorHasher = TensorHasher(layouts[current].tensors, fileSize: sizes[current])
                    frames = []
                }
            }
        }

        let jobList = jobs
        try runOrdered(count: jobList.count, threads: threads, slots: slots, work: { i, slot, worker in
            let job = jobList[i]
            let raw = UnsafeMutableRawBufferPointer(rebasing: slot.raw[0..<job.length])
            try fileList.get(job.file).read(into: raw, at: job.offset)
            let start = WorkTimer.now()
            var src = UnsafeRawPointer(raw.baseAddress!)
            if job.planes > 1 {
                BytePlanes.split(src, slot.planes.baseAddress!, count: job.length, planes: job.planes)
                src = UnsafeRawPointer(slot.planes.baseAddress!)
            }
            slot.compressedSize = try compressors[worker].compress(src, count: job.length, planes: job.planes, into: slot.compressed)
            let frame = UnsafeRawBufferPointer(rebasing: slot.compressed[0..<slot.compressedSize])
            if let why = ZstdFrame.check(frame, size: job.length) {
                throw FTQError.io("ftqz.internal", file: inputs[job.file].path, "zstd wrote a frame ftq cannot read back: \(why)")
            }
            timer.add(WorkTimer.now() - start)
            let h = SHA256Hasher()
            h.update(frame)
            slot.compressedSHA256 = h.finalizeHex()
        }, consume: { i, slot in
            let job = jobList[i]
            advance(to: job.file)
            let raw = UnsafeRawBufferPointer(rebasing: slot.raw[0..<job.length])
            fileHasher.update(raw)
            tensorHasher.update(raw, at: job.offset)
            try out.write(UnsafeRawBufferPointer(rebasing: slot.compressed[0..<slot.compressedSize]))
            packBytes += slot.compressedSize
            frames.append(PackIndex.Frame(size: job.length, compressedSize: slot.compressedSize, planes: job.planes, sha256: slot.compressedSHA256))
            progress.advance(job.length)
        })
        advance(to: inputs.count)

        let index = PackIndex(level: level, files: entries)
        let indexBytes = index.bytes
        guard indexBytes.count <= PackFormat.maxIndexSize else {
            throw FTQError.invalid("ftqz.index-too-large", "the index would take \(indexBytes.count) bytes, more than the \(PackFormat.maxIndexSize) a reader accepts")
        }
        let h = SHA256Hasher()
        h.update(indexBytes)
        try out.write(indexBytes)
        try out.write(PackFormat.trailer(indexOffset: packBytes, indexLength: indexBytes.count, indexSHA256: hexBytes(h.finalizeHex())))
        packBytes += indexBytes.count + PackFormat.trailerSize
        return PackWriteResult(index: index, paths: inputs.map(\.path), packBytes: packBytes, compressSeconds: timer.total)
    }
}

/// The input files a pack is being written from, open while their frames are in flight
/// (so that a directory of thousands of files does not hold thousands of descriptors).
final class OpenFiles: @unchecked Sendable {
    private let paths: [String]
    private let sizes: [Int]
    private var open: [Int: InputFile] = [:]
    private let lock = DispatchSemaphoreLock()

    init(paths: [String], sizes: [Int]) { self.paths = paths; self.sizes = sizes }

    func get(_ k: Int) throws -> InputFile {
        try lock.withLock {
            if let f = open[k] { return f }
            let f = try InputFile(paths[k])
            guard f.size == sizes[k] else {
                throw FTQError.io("io.changed", file: paths[k], "the file changed size while it was packed (\(sizes[k]) -> \(f.size) bytes)")
            }
            open[k] = f
            return f
        }
    }

    func close(_ k: Int) { lock.withLock { _ = open.removeValue(forKey: k) } }
}

/// The bytes of a hex digest.
func hexBytes(_ hex: String) -> [UInt8] {
    func v(_ c: UInt8) -> UInt8 { c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x61 + 10 }
    let b = Array(hex.utf8)
    return stride(from: 0, to: b.count - 1, by: 2).map { v(b[$0]) << 4 | v(b[$0 + 1]) }
}

/// CPU seconds of work summed over threads: each piece is timed with the CPU clock of the
/// thread that runs it, so that threads waiting for a core do not count.
final class WorkTimer: @unchecked Sendable {
    private var seconds = 0.0
    private let lock = DispatchSemaphoreLock()

    /// The calling thread's CPU time.
    static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    func add(_ s: Double) { lock.withLock { seconds += s } }
    var total: Double { lock.withLock { seconds } }
}

/// A lock for short critical sections.
final class DispatchSemaphoreLock: @unchecked Sendable {
    private let s = DispatchSemaphore(value: 1)
    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        s.wait()
        defer { s.signal() }
        return try body()
    }
}
