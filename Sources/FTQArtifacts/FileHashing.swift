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
        return try slots.results.map { try $0!.get() }
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

    /// Every tensor's data digest, in the model's order.
    public static func tensorDigests(_ model: Model) throws -> [(TensorEntry, String)] {
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 << 20, alignment: 4096)
        defer { buf.deallocate() }
        return try model.tensors.map { t in (t, try hashRange(model.file(of: t), offset: t.offset, nbytes: t.nbytes, buffer: buf)) }
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
