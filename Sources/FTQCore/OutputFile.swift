#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch

/// A file written under a temporary name in its destination directory and renamed to its
/// final name only when complete (``commit()``).
///
/// The temporary name is `.<name>.<pid>.ftq-tmp`, visible to `ls -a`, so that a run killed
/// with SIGKILL leaves an obviously incomplete file, never a file at the final name.
/// SIGINT and SIGTERM remove the temporary files of the running process before it exits.
public final class OutputFile: @unchecked Sendable {
    public let finalPath: String
    public let tempPath: String
    private var fd: Int32
    private var buffer: [UInt8] = []
    private let bufferLimit = 4 << 20
    /// Bytes written so far (including buffered ones).
    public private(set) var bytesWritten: Int = 0
    /// The digest of every byte written, when the file was made with a ``DigestMaker``.
    private let digest: StreamDigest?
    private var finished = false

    /// Creates the temporary file beside `finalPath`.
    ///
    /// Refuses an existing `finalPath` unless `overwrite` is true. With `digest`, every byte
    /// written is hashed on the way (``digestHex``), so the file never has to be read back.
    public init(_ finalPath: String, overwrite: Bool, digest: DigestMaker? = nil) throws {
        self.finalPath = finalPath
        self.digest = digest?()
        switch PathKind.of(finalPath) {
        case .missing: break
        case let .inaccessible(reason):
            throw FTQError.io("io.open", file: finalPath, "cannot check the output path: \(reason)")
        case .directory:
            throw FTQError.usage("output.is-directory", "\(finalPath) is a directory, expected a file name")
        default:
            if !overwrite {
                throw FTQError.usage("output.exists", "\(finalPath) already exists (use --force to replace it)")
            }
        }
        let (dir, base) = splitPath(finalPath)
        tempPath = (dir.isEmpty ? "" : dir + "/") + "." + base + ".\(getpid()).ftq-tmp"
        fd = open(tempPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 {
            throw FTQError.io("io.create", file: finalPath, "cannot create output: \(systemError(errno))")
        }
        TempFileRegistry.shared.add(tempPath)
        buffer.reserveCapacity(bufferLimit)
    }

    deinit {
        if fd >= 0 || (finished && TempFileRegistry.shared.contains(tempPath)) { abort() }
    }

    /// Appends bytes.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        bytesWritten += bytes.count
        digest?.update(bytes)
        if buffer.count + bytes.count <= bufferLimit {
            buffer.append(contentsOf: bytes)
            return
        }
        try flush()
        if bytes.count >= bufferLimit {
            try writeAll(bytes)
        } else {
            buffer.append(contentsOf: bytes)
        }
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try write($0) }
    }

    /// Appends `count` zero bytes.
    public func writeZeros(_ count: Int) throws {
        if count > 0 { try write([UInt8](repeating: 0, count: count)) }
    }

    private func flush() throws {
        if buffer.isEmpty { return }
        try buffer.withUnsafeBytes { try writeAll($0) }
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                let e = errno
                throw FTQError.io(e == ENOSPC ? "io.disk-full" : "io.write", file: finalPath,
                                  "write failed: \(systemError(e))")
            }
            done += n
        }
        onDisk += bytes.count
        // Start writing back what is written, without waiting, so that the fsync in finish()
        // does not wait for the whole file at once.
        if onDisk - writebackStarted >= Self.writebackStep {
            _ = startWriteback?(fd, Int64(writebackStarted), Int64(onDisk - writebackStarted), 2 /* SYNC_FILE_RANGE_WRITE */)
            writebackStarted = onDisk
        }
    }

    /// Bytes handed to the kernel, and how many of them have had writeback started.
    private var onDisk = 0
    private var writebackStarted = 0
    static let writebackStep = 8 << 20

    /// Flushes and syncs the temporary file, and returns the digest of its bytes (nil without
    /// a digest). The file is complete but not yet at its final name: see ``commit()``.
    @discardableResult
    public func finish() throws -> String? {
        precondition(!finished && fd >= 0)
        try flush()
        if fsync(fd) != 0 {
            let e = errno
            throw FTQError.io(e == ENOSPC ? "io.disk-full" : "io.write", file: finalPath, "fsync failed: \(systemError(e))")
        }
        close(fd)
        fd = -1
        finished = true
        return digest?.finalizeHex()
    }

    /// Renames the finished file to its final name (finishing it first if needed).
    ///
    /// First checks that no input file changed while ftq read it
    /// (``InputFile/checkInputsUnchanged()``): if one did, the temporary file is removed and
    /// `io.input-changed` is thrown, so that an output made of mixed old and new input bytes
    /// never appears under its final name.
    public func commit() throws {
        if !finished { try finish() }
        do { try InputFile.checkInputsUnchanged() } catch {
            abort()
            throw error
        }
        if rename(tempPath, finalPath) != 0 {
            let e = errno
            unlink(tempPath)
            TempFileRegistry.shared.remove(tempPath)
            throw FTQError.io("io.rename", file: finalPath, "cannot rename the finished output into place: \(systemError(e))")
        }
        TempFileRegistry.shared.remove(tempPath)
        let (dir, _) = splitPath(finalPath)
        let dfd = open(dir.isEmpty ? "." : dir, O_RDONLY | O_DIRECTORY)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
    }

    /// Removes the temporary file; the final name is never touched.
    public func abort() {
        if fd >= 0 { close(fd); fd = -1 }
        finished = true
        unlink(tempPath)
        TempFileRegistry.shared.remove(tempPath)
    }
}


/// Splits a path into its directory ("" for none) and last component.
public func splitPath(_ path: String) -> (dir: String, base: String) {
    guard let slash = path.lastIndex(of: "/") else { return ("", path) }
    let dir = String(path[..<slash])
    return (dir.isEmpty ? "/" : dir, String(path[path.index(after: slash)...]))
}

/// Joins a directory and a name.
public func joinPath(_ dir: String, _ name: String) -> String {
    if dir.isEmpty { return name }
    return dir.hasByteSuffix("/") ? dir + name : dir + "/" + name
}

/// The temporary files of this process, removed on SIGINT and SIGTERM.
public final class TempFileRegistry: @unchecked Sendable {
    public static let shared = TempFileRegistry()
    private var paths: Set<String> = []
    private let lock = NSLockLike()
    private var sources: [DispatchSourceSignal] = []

    private var dirs: Set<String> = []

    func add(_ p: String) { lock.withLock { _ = paths.insert(p) } }
    func remove(_ p: String) { lock.withLock { _ = paths.remove(p) } }
    func contains(_ p: String) -> Bool { lock.withLock { paths.contains(p) } }
    /// Registers a staging directory whose plain files are removed on SIGINT/SIGTERM.
    public func addDirectory(_ p: String) { lock.withLock { _ = dirs.insert(p) } }
    public func removeDirectory(_ p: String) { lock.withLock { _ = dirs.remove(p) } }

    /// Installs SIGINT/SIGTERM handlers that remove every registered temporary file and
    /// exit with 128 + the signal number.
    public func installSignalHandlers() {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let src = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            src.setEventHandler { [unowned self] in
                self.lock.withLock {
                    for p in self.paths { unlink(p) }
                    for d in self.dirs {
                        if let h = opendir(d) {
                            while let e = readdir(h) {
                                let name = withUnsafePointer(to: e.pointee.d_name) {
                                    $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
                                }
                                if name != "." && name != ".." { unlink(d + "/" + name) }
                            }
                            closedir(h)
                        }
                        rmdir(d)
                    }
                }
                _exit(128 + sig)
            }
            src.resume()
            sources.append(src)
        }
    }
}

/// A pthread mutex (Foundation-free).
public final class NSLockLike: @unchecked Sendable {
    private var m = pthread_mutex_t()
    public init() { pthread_mutex_init(&m, nil) }
    deinit { pthread_mutex_destroy(&m) }
    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(&m)
        defer { pthread_mutex_unlock(&m) }
        return try body()
    }
}

/// Linux's sync_file_range(2), looked up at run time (Glibc's Swift module does not declare it);
/// nil where the C library lacks it, and then writeback simply starts at fsync.
private let startWriteback: (@convention(c) (Int32, Int64, Int64, UInt32) -> Int32)? = {
    guard let p = dlsym(nil, "sync_file_range") else { return nil }
    return unsafeBitCast(p, to: (@convention(c) (Int32, Int64, Int64, UInt32) -> Int32).self)
}()
