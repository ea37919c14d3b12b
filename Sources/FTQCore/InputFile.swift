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
public final class InputFile: @unchecked Sendable {
    /// The path as the user gave it; used in every error message.
    public let path: String
    /// Size in bytes when the file was opened.
    public let size: Int
    /// Device and inode, to recognise the same file under two names.
    public let identity: FileIdentity
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
    }

    deinit { close(fd) }

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
