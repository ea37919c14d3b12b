import Dispatch
import FTQCore
import FTQFormats

extension SHA256Hasher: StreamDigest {}

/// SHA-256 of files and of the tensors in them, several files at once.
public enum FileHashing {
    /// A digest maker for writers.
    public static let sha256: DigestMaker = { SHA256Hasher() }

    public struct FileDigest: Sendable {
        public var path: String
        public var size: Int
        public var sha256: String
    }

    /// Hashes `paths` with up to `threads` files at a time; results in the order of `paths`.
    /// The first error (in path order) is thrown.
    public static func hash(_ paths: [String], threads: Int) throws -> [FileDigest] {
        try hashAll(paths, threads: threads).map { try $0.get() }
    }

    /// Like ``hash(_:threads:)``, with each file's own outcome.
    public static func hashAll(_ paths: [String], threads: Int) throws -> [Result<FileDigest, Error>] {
        final class Slots: @unchecked Sendable {
            var results: [Result<FileDigest, Error>?]
            init(_ n: Int) { results = Array(repeating: nil, count: n) }
        }
        let slots = Slots(paths.count)
        let lock = DispatchSemaphore(value: 1)
        let queue = DispatchQueue(label: "ftq.hash", attributes: .concurrent)
        let limit = DispatchSemaphore(value: max(1, threads))
        let group = DispatchGroup()
        for (k, p) in paths.enumerated() {
            limit.wait()
            group.enter()
            queue.async {
                let r = Result { () throws -> FileDigest in
                    let f = try InputFile(p)
                    return FileDigest(path: p, size: f.size, sha256: try SHA256Hasher.hashFile(f))
                }
                lock.wait()
                slots.results[k] = r
                lock.signal()
                limit.signal()
                group.leave()
            }
        }
        group.wait()
        return slots.results.map { $0! }
    }

    /// SHA-256 of `nbytes` bytes at `offset` of a file (a tensor's data).
    public static func hashRange(_ file: InputFile, offset: Int, nbytes: Int, buffer: UnsafeMutableRawBufferPointer) throws -> String {
        let h = SHA256Hasher()
        var done = 0
        while done < nbytes {
            let n = min(buffer.count, nbytes - done)
            let slice = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n])
            try file.read(into: slice, at: offset + done)
            h.update(UnsafeRawBufferPointer(slice))
            done += n
        }
        return h.finalizeHex()
    }

    /// Every tensor's data digest, in the model's order, `threads` tensors at a time.
    public static func tensorDigests(_ model: Model, threads: Int = 1) throws -> [(TensorEntry, String)] {
        try ranges(model.tensors.map { (model.file(of: $0), $0.offset, $0.nbytes) }, threads: threads)
            .enumerated().map { (model.tensors[$0.offset], $0.element) }
    }

    /// Digests of byte ranges of files, `threads` at a time; results in order.
    public static func ranges(_ ranges: [(InputFile, Int, Int)], threads: Int) throws -> [String] {
        final class Slots: @unchecked Sendable {
            var results: [Result<String, Error>?]
            var next = 0
            init(_ n: Int) { results = Array(repeating: nil, count: n) }
        }
        let slots = Slots(ranges.count)
        let workers = max(1, min(threads, ranges.count))
        let lock = DispatchSemaphore(value: 1)
        let group = DispatchGroup()
        nonisolated(unsafe) let items = ranges
        for _ in 0..<workers {
            group.enter()
            DispatchQueue.global().async {
                let buf = LargeBuffer.allocate(byteCount: 4 << 20)
                defer { LargeBuffer.deallocate(buf); group.leave() }
                while true {
                    lock.wait()
                    let k = slots.next
                    slots.next += 1
                    lock.signal()
                    if k >= items.count { return }
                    let (f, off, n) = items[k]
                    let r = Result { try hashRange(f, offset: off, nbytes: n, buffer: buf) }
                    lock.wait()
                    slots.results[k] = r
                    lock.signal()
                }
            }
        }
        group.wait()
        return try slots.results.map { try $0!.get() }
    }

    /// Hashes files on a background thread while the caller does other work (the inputs of a
    /// conversion, on the second core).
    public final class Background: @unchecked Sendable {
        private let group = DispatchGroup()
        private var result: Result<[FileDigest], Error> = .success([])

        public init(_ paths: [String], threads: Int) {
            group.enter()
            DispatchQueue.global().async {
                self.result = Result { try FileHashing.hash(paths, threads: threads) }
                self.group.leave()
            }
        }

        /// Waits for the digests.
        public func wait() throws -> [FileDigest] {
            group.wait()
            return try result.get()
        }
    }
}
