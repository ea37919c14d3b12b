import Dispatch

/// Hashes what a writer writes on another thread, so that hashing overlaps converting and
/// writing (formats/manifest.md, "Hashing").
///
/// The writer feeds every byte of the file in order, marking which bytes are tensor data;
/// the pipeline keeps three kinds of digest: the whole file, each tensor's data, and the
/// bytes outside tensor data. Bytes are copied into one of a few pooled buffers, so the
/// caller may reuse its buffer at once; memory is bounded by the pool.
public final class HashPipeline: @unchecked Sendable {
    private let maker: DigestMaker
    private let queue = DispatchQueue(label: "ftq.hash-pipeline")
    private let free: DispatchSemaphore
    private var pool: [UnsafeMutableRawBufferPointer] = []
    private let poolLock = DispatchSemaphore(value: 1)
    private let bufferSize: Int

    // Touched only on `queue`.
    private let file: StreamDigest
    private let other: StreamDigest
    private var tensor: StreamDigest?
    private var tensorDigests: [String] = []

    public init(_ maker: @escaping DigestMaker, buffers: Int = 4, bufferSize: Int = 4 << 20) {
        self.maker = maker
        self.bufferSize = bufferSize
        self.free = DispatchSemaphore(value: buffers)
        self.file = maker()
        self.other = maker()
        for _ in 0..<buffers { pool.append(LargeBuffer.allocate(byteCount: bufferSize)) }
    }

    deinit {
        queue.sync {}
        for b in pool { LargeBuffer.deallocate(b) }
    }

    /// Feeds bytes that are tensor data (`tensor: true`, between ``beginTensor()`` and
    /// ``endTensor()``) or not (header, metadata, padding).
    public func feed(_ bytes: UnsafeRawBufferPointer, tensor isTensor: Bool) {
        var done = 0
        while done < bytes.count {
            let n = min(bufferSize, bytes.count - done)
            free.wait()
            poolLock.wait()
            nonisolated(unsafe) let buf = pool.removeLast()
            poolLock.signal()
            buf.baseAddress!.copyMemory(from: bytes.baseAddress! + done, byteCount: n)
            queue.async {
                let chunk = UnsafeRawBufferPointer(rebasing: buf[0..<n])
                if let part = isTensor ? self.tensor : self.other {
                    self.file.update(chunk, alongWith: part)
                } else {
                    self.file.update(chunk)
                }
                self.poolLock.wait()
                self.pool.append(buf)
                self.poolLock.signal()
                self.free.signal()
            }
            done += n
        }
    }

    public func feed(_ bytes: [UInt8], tensor isTensor: Bool) {
        bytes.withUnsafeBytes { feed($0, tensor: isTensor) }
    }

    public func beginTensor() {
        queue.async { self.tensor = self.maker() }
    }

    public func endTensor() {
        queue.async {
            self.tensorDigests.append(self.tensor!.finalizeHex())
            self.tensor = nil
        }
    }

    /// Waits for every byte fed and returns the digests: the file's, each tensor's (in the
    /// order fed) and the non-tensor bytes'.
    public func finish() -> (file: String, tensors: [String], other: String) {
        queue.sync { (file.finalizeHex(), tensorDigests, other.finalizeHex()) }
    }
}
