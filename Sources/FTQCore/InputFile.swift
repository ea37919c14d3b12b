#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A regular file opened for reading with `pread`.
///
/// ftq never maps or loads a whole model file: headers are read with a few `pread`s and
/// tensor data is streamed in bounded chunks. Reading with `pread` rather than `mmap` also
/// means that a file truncated while ftq reads it gives a clear error (`io.short-read`),
/// never a SIGBUS.
///
/// Each file's ``FileStamp`` is recorded when it is opened, and every open input is
/// registered: ``checkInputsUnchanged()`` (which ``OutputFile/commit()`` calls before it
/// renames anything into place) refuses to go on if a file was rewritten, resized or replaced
/// while ftq read it, so that an output never mixes old and new bytes of an input. The watch
/// is per process, as ftq runs one command per process: a change found when a file is closed
/// refuses every later commit of the process.
public final class InputFile: @unchecked Sendable {
    /// The path as the user gave it; used in every error message.
    public let path: String
    /// Size in bytes when the file was opened.
    public let size: Int
    /// Device and inode, to recognise the same file under two names.
    public let identity: FileIdentity
    /// Size, inode and times when the file was opened.
    public let stamp: FileStamp
    private let fd: Int32

    /// Opens `path`, which must be a regular file (not a directory, FIFO or device).
    public init(_ path: String) throws {
        self.path = path
        var st = stat()
        // stat first, so that opening a FIFO cannot block.
        if stat(path, &st) != 0 {
            throw FTQError.io(errno == ENOENT ? "io.not-found" : "io.open", file: path, "cannot open: \(systemError(errno))")
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw FTQError.invalid("input.not-regular-file", file: path, "not a regular file (\(fileTypeName(st.st_mode)))")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        if fd < 0 { throw FTQError.io("io.open", file: path, "cannot open: \(systemError(errno))") }
        var st2 = stat()
        if fstat(fd, &st2) != 0 || (st2.st_mode & S_IFMT) != S_IFREG {
            close(fd)
            throw FTQError.invalid("input.not-regular-file", file: path, "not a regular file")
        }
        self.fd = fd
        self.size = Int(st2.st_size)
        self.identity = FileIdentity(device: UInt64(st2.st_dev), inode: UInt64(st2.st_ino))
        self.stamp = FileStamp(st2)
        InputWatch.shared.opened(InputWatch.Entry(path: path, fd: fd, stamp: stamp))
    }

    deinit {
        InputWatch.shared.closing(InputWatch.Entry(path: path, fd: fd, stamp: stamp))
        close(fd)
    }

    /// The error to report if the file changed since it was opened, or nil: when `byName` is
    /// true, its path no longer names it (it was removed, or another file renamed over it);
    /// its size, modification or status-change time differ (`fstat`).
    ///
    /// Rewriting a file in place updates its modification and status-change times, which
    /// nothing but the kernel can set back (the status-change time); the times have the
    /// resolution the kernel gives them, one clock tick (1 to 10 ms) at worst on Linux.
    public func change(byName: Bool = true) -> FTQError? {
        InputWatch.change(InputWatch.Entry(path: path, fd: fd, stamp: stamp), byName: byName)
    }

    /// Throws `io.input-changed` if the file changed since it was opened (see ``change(byName:)``).
    public func checkUnchanged() throws {
        if let e = change() { throw e }
    }

    /// Throws `io.input-changed`, naming the file, if any input file this process has opened
    /// changed while it was open: those still open are checked now (``change(byName:)``),
    /// those already closed were checked when they were closed.
    ///
    /// Costs two `stat`s per open file; called before an output is renamed into place.
    public static func checkInputsUnchanged() throws {
        if let e = InputWatch.shared.firstChange() { throw e }
    }

    /// Reads exactly `count` bytes at `offset` into `buffer`, or throws.
    ///
    /// A read past the end of the file is an `io.short-read` error that names the offset:
    /// the file is truncated or changed while ftq was reading it.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws {
        var done = 0
        let count = buffer.count
        while done < count {
            let n = pread(fd, buffer.baseAddress! + done, count - done, off_t(offset + done))
            if n < 0 {
                if errno == EINTR { continue }
                throw FTQError.io("io.read", file: path, "read failed at byte \(offset + done): \(systemError(errno))")
            }
            if n == 0 {
                throw FTQError.io("io.short-read", file: path,
                                  "file ended at byte \(offset + done) while reading \(count) bytes at offset \(offset) (truncated or changed while reading?)")
            }
            done += n
        }
    }

    /// Reads exactly `count` bytes at `offset`.
    public func read(at offset: Int, count: Int) throws -> [UInt8] {
        if count == 0 { return [] }
        return try [UInt8](unsafeUninitializedCapacity: count) { buf, initialized in
            try read(into: UnsafeMutableRawBufferPointer(buf), at: offset)
            initialized = count
        }
    }
}

/// What `fstat` says of a file that changes when its content does: device, inode, size, and
/// the modification and status-change times to the nanosecond.
public struct FileStamp: Hashable, Sendable {
    public var device: UInt64
    public var inode: UInt64
    public var size: Int64
    public var modified: Duration
    public var statusChanged: Duration

    public init(device: UInt64, inode: UInt64, size: Int64, modified: Duration, statusChanged: Duration) {
        self.device = device
        self.inode = inode
        self.size = size
        self.modified = modified
        self.statusChanged = statusChanged
    }

    init(_ st: stat) {
        #if canImport(Darwin)
        let m = st.st_mtimespec, c = st.st_ctimespec
        #else
        let m = st.st_mtim, c = st.st_ctim
        #endif
        self.init(device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: Int64(st.st_size),
                  modified: .seconds(Int64(m.tv_sec)) + .nanoseconds(Int64(m.tv_nsec)),
                  statusChanged: .seconds(Int64(c.tv_sec)) + .nanoseconds(Int64(c.tv_nsec)))
    }
}

/// The input files of this process: those open (by descriptor), and the first change found
/// in one when it was closed.
final class InputWatch: @unchecked Sendable {
    struct Entry {
        var path: String
        var fd: Int32
        var stamp: FileStamp
    }

    static let shared = InputWatch()
    private let lock = NSLockLike()
    private var open: [Int32: Entry] = [:]
    private var closedChange: FTQError?

    func opened(_ e: Entry) {
        lock.withLock { open[e.fd] = e }
    }

    /// Called while the descriptor is still open, before it is closed. Only `fstat` is
    /// consulted: what was read came from the open file, whatever its name names now.
    func closing(_ e: Entry) {
        let change = Self.change(e, byName: false)
        lock.withLock {
            open[e.fd] = nil
            if closedChange == nil, let change { closedChange = change }
        }
    }

    /// The first change: one found when a file was closed, else one among the open files (by
    /// path, so that the message does not depend on the order of opening).
    func firstChange() -> FTQError? {
        lock.withLock {
            if let closedChange { return closedChange }
            // The lock keeps every descriptor listed here open while it is checked.
            for e in open.values.sorted(by: { $0.path.utf8.lexicographicallyPrecedes($1.path.utf8) }) {
                if let change = Self.change(e, byName: true) { return change }
            }
            return nil
        }
    }

    static func change(_ e: Entry, byName: Bool) -> FTQError? {
        if byName {
            var named = stat()
            if stat(e.path, &named) != 0 {
                return changed(e.path, "it was removed or renamed (\(systemError(errno)))")
            }
            if UInt64(named.st_dev) != e.stamp.device || UInt64(named.st_ino) != e.stamp.inode {
                return changed(e.path, "another file was put in its place")
            }
        }
        var st = stat()
        guard fstat(e.fd, &st) == 0 else {
            return FTQError.io("io.input-changed", file: e.path,
                               "cannot check whether it changed while ftq read it: \(systemError(errno))")
        }
        let now = FileStamp(st)
        if now == e.stamp { return nil }
        if st.st_nlink == 0 { return changed(e.path, "it was removed, or another file was put in its place") }
        return changed(e.path, now.size != e.stamp.size
            ? "its size went from \(e.stamp.size) to \(now.size) bytes"
            : "it was rewritten (its modification or status-change time moved)")
    }

    static func changed(_ path: String, _ what: String) -> FTQError {
        FTQError.io("io.input-changed", file: path,
                    "changed while ftq was reading it: \(what); the output would mix old and new bytes, so none is written: run again once nothing writes to it")
    }
}

/// Device and inode of a file.
public struct FileIdentity: Hashable, Sendable {
    public var device: UInt64
    public var inode: UInt64
}

extension FileIdentity {
    /// The identity of an existing path, or nil if it does not exist.
    public static func of(_ path: String) -> FileIdentity? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return FileIdentity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
    }
}

/// The text of a C `errno` value.
public func systemError(_ code: Int32) -> String {
    String(cString: strerror(code))
}

func fileTypeName(_ mode: mode_t) -> String {
    switch mode & S_IFMT {
    case S_IFDIR: return "a directory"
    case S_IFIFO: return "a FIFO"
    case S_IFCHR: return "a character device"
    case S_IFBLK: return "a block device"
    case S_IFSOCK: return "a socket"
    case S_IFLNK: return "a symbolic link"
    default: return "not a regular file"
    }
}

/// What kind of thing a path names.
public enum PathKind: Sendable, Equatable {
    case missing, regularFile, directory, other(String)
    /// `stat` failed for a reason other than absence (permission, a symlink loop, ...).
    case inaccessible(String)

    public static func of(_ path: String) -> PathKind {
        var st = stat()
        guard stat(path, &st) == 0 else {
            let e = errno
            return e == ENOENT || e == ENOTDIR ? .missing : .inaccessible(systemError(e))
        }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return .regularFile
        case S_IFDIR: return .directory
        default: return .other(fileTypeName(st.st_mode))
        }
    }
}
