#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import FTQCore

/// An input rewritten, resized, replaced or removed while ftq has it open is noticed before an
/// output is committed (`io.input-changed`, formats/cli.md, "Inputs").
///
/// The watch over open inputs is per process, as the command line runs one command per
/// process; so each scenario runs in a process of its own (an exit test), where no other test
/// opens or changes files. A scenario prints what went wrong on stderr and stops; the test
/// requires an empty stderr.
@Suite struct InputChangeTests {
    // MARK: helpers (run in the child process)

    static func fail(_ message: String) -> Never {
        let line = Array("FAILED: \(message)\n".utf8)
        _ = line.withUnsafeBytes { Glibc.write(2, $0.baseAddress, $0.count) }
        // Exit normally: the parent shows what was written to stderr (it sees no output of a
        // process whose exit status it did not expect).
        exit(0)
    }

    static func check(_ ok: Bool, _ message: @autoclosure () -> String) {
        if !ok { fail(message()) }
    }

    /// A fresh directory of its own.
    static func tempDir() -> String {
        var template = Array("/tmp/ftq-input-change-XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { fail("mkdtemp: \(systemError(errno))") }
        return String(cString: p)
    }

    /// Removes `dir` and the plain files in it.
    static func removeDir(_ dir: String) {
        if let d = opendir(dir) {
            while let e = readdir(d) {
                let name = withUnsafePointer(to: e.pointee.d_name) {
                    $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
                }
                if name != "." && name != ".." { unlink(dir + "/" + name) }
            }
            closedir(d)
        }
        rmdir(dir)
    }

    static func writeFile(_ path: String, _ bytes: [UInt8]) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        check(fd >= 0, "create \(path): \(systemError(errno))")
        check(bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) } == bytes.count, "write \(path)")
        close(fd)
    }

    /// Writes `bytes` at `offset` of an existing file, in place (same inode).
    static func rewrite(_ path: String, at offset: Int, _ bytes: [UInt8]) {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        check(fd >= 0, "open \(path) for writing: \(systemError(errno))")
        check(bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) } == bytes.count, "pwrite \(path)")
        close(fd)
    }

    static func stampOf(_ path: String) -> FileStamp {
        var st = stat()
        check(stat(path, &st) == 0, "stat \(path)")
        return FileStamp(st)
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// A 4096-byte file made well before it is opened: timestamps have the file system's
    /// resolution (a few milliseconds), so a change made in the same tick as the file's
    /// creation could not be told apart from it.
    static func oldFile(_ dir: String) -> String {
        let path = dir + "/in.bin"
        writeFile(path, [UInt8](repeating: 7, count: 4096))
        usleep(30_000)
        return path
    }

    /// The error's code is `io.input-changed`, it names `path` and says `what`.
    static func expectChange(_ e: FTQError?, _ path: String, _ what: String, _ context: String) {
        guard let e else { fail("\(context): no change reported") }
        check(e.code == "io.input-changed" && e.kind == .io, "\(context): \(e)")
        check(e.file == path, "\(context): names \(e.file ?? "no file"), not \(path)")
        check(e.description.contains(what), "\(context): \"\(what)\" not in \(e)")
    }

    /// An output committed now is refused with the change and leaves nothing behind.
    static func expectCommitRefused(_ dir: String, _ path: String, _ what: String) {
        let final = dir + "/out.bin"
        let out: OutputFile
        do { out = try OutputFile(final, overwrite: false) } catch { fail("OutputFile: \(error)") }
        do { try out.write([1, 2, 3]) } catch { fail("write: \(error)") }
        do {
            try out.commit()
            fail("commit succeeded although \(path) changed")
        } catch let e as FTQError {
            expectChange(e, path, what, "commit")
        } catch { fail("commit: \(error)") }
        check(!exists(final), "\(final) exists after a refused commit")
        check(!exists(out.tempPath), "\(out.tempPath) left after a refused commit")
    }

    // MARK: scenarios (each in a process of its own)

    /// Same size, other bytes, same inode: the times moved.
    static func rewrittenInPlace() {
        let dir = tempDir()
        let path = oldFile(dir)
        let f: InputFile
        do { f = try InputFile(path) } catch { fail("open: \(error)") }
        check(f.change() == nil, "an unchanged file is reported changed: \(String(describing: f.change()))")
        do { try InputFile.checkInputsUnchanged() } catch { fail("unchanged inputs refused: \(error)") }
        rewrite(path, at: 100, [1, 2, 3, 4])
        let now = stampOf(path)
        check(now.size == f.stamp.size && now.inode == f.stamp.inode, "the rewrite changed the size or inode")
        check(now != f.stamp, "the rewrite did not move the file's times: nothing to detect")
        expectChange(f.change(), path, "it was rewritten", "change()")
        do {
            try f.checkUnchanged()
            fail("checkUnchanged() passed")
        } catch let e as FTQError { expectChange(e, path, "it was rewritten", "checkUnchanged()") } catch { fail("\(error)") }
        do {
            try InputFile.checkInputsUnchanged()
            fail("checkInputsUnchanged() passed")
        } catch let e as FTQError { expectChange(e, path, "it was rewritten", "checkInputsUnchanged()") } catch { fail("\(error)") }
        expectCommitRefused(dir, path, "it was rewritten")
        withExtendedLifetime(f) {}
        removeDir(dir)
    }

    /// Grown by one byte (no read reaches the new end, so no short read tells).
    static func resized() {
        let dir = tempDir()
        let path = oldFile(dir)
        let f: InputFile
        do { f = try InputFile(path) } catch { fail("open: \(error)") }
        let fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
        check(fd >= 0 && Glibc.write(fd, [UInt8(9)], 1) == 1, "append")
        close(fd)
        expectChange(f.change(), path, "its size went from 4096 to 4097 bytes", "change()")
        expectCommitRefused(dir, path, "its size went from 4096 to 4097 bytes")
        withExtendedLifetime(f) {}
        removeDir(dir)
    }

    /// Another file renamed over the path: the open file's bytes are intact, but the name
    /// (which the manifest's input digest reads) now means another file.
    static func replaced() {
        let dir = tempDir()
        let path = oldFile(dir)
        let f: InputFile
        do { f = try InputFile(path) } catch { fail("open: \(error)") }
        writeFile(dir + "/new.bin", [UInt8](repeating: 7, count: 4096))
        check(rename(dir + "/new.bin", path) == 0, "rename")
        // The open file lost its last name (which moves its status-change time).
        expectChange(f.change(byName: false), path, "it was removed, or another file was put in its place", "change(byName: false)")
        expectChange(f.change(), path, "another file was put in its place", "change()")
        expectCommitRefused(dir, path, "another file was put in its place")
        check(unlink(path) == 0, "unlink")
        expectChange(f.change(), path, "it was removed or renamed", "change() after unlink")
        withExtendedLifetime(f) {}
        removeDir(dir)
    }

    /// A file changed while it was open and closed before the output is committed: the change
    /// was recorded when it was closed.
    static func changedThenClosed() {
        let dir = tempDir()
        let path = oldFile(dir)
        do {
            let f = try InputFile(path)
            _ = try f.read(at: 0, count: 16)
            rewrite(path, at: 0, [0xff])
            check(stampOf(path) != f.stamp, "the rewrite did not move the file's times: nothing to detect")
        } catch { fail("\(error)") }
        // The InputFile is gone, its descriptor closed.
        do {
            try InputFile.checkInputsUnchanged()
            fail("a change while the file was open was forgotten when it was closed")
        } catch let e as FTQError { expectChange(e, path, "it was rewritten", "after close") } catch { fail("\(error)") }
        expectCommitRefused(dir, path, "it was rewritten")
        removeDir(dir)
    }

    /// No change while a file is open: changes after it was closed do not count (what was
    /// read is consistent), and outputs are committed.
    static func unchangedOrChangedAfterClose() {
        let dir = tempDir()
        let path = oldFile(dir)
        let other = dir + "/other.bin"
        writeFile(other, [1, 2, 3])
        let kept: InputFile
        do {
            kept = try InputFile(other)
            let f = try InputFile(path)
            _ = try f.read(at: 0, count: 4096)
        } catch { fail("\(error)") }
        rewrite(path, at: 0, [0xff])
        do { try InputFile.checkInputsUnchanged() } catch { fail("refused: \(error)") }
        let final = dir + "/out.bin"
        do {
            let out = try OutputFile(final, overwrite: false)
            try out.write([1, 2, 3])
            try out.commit()
        } catch { fail("commit: \(error)") }
        check(exists(final), "\(final) missing after commit")
        withExtendedLifetime(kept) {}
        removeDir(dir)
    }

    // MARK: tests

    @Test func rewrittenInPlaceIsNoticed() async {
        let r = await #expect(processExitsWith: .success, observing: [\.standardErrorContent]) { Self.rewrittenInPlace() }
        #expect(r?.standardErrorContent.isEmpty ?? false, "\(String(decoding: r?.standardErrorContent ?? [], as: UTF8.self))")
    }

    @Test func resizedIsNoticed() async {
        let r = await #expect(processExitsWith: .success, observing: [\.standardErrorContent]) { Self.resized() }
        #expect(r?.standardErrorContent.isEmpty ?? false, "\(String(decoding: r?.standardErrorContent ?? [], as: UTF8.self))")
    }

    @Test func replacedOrRemovedIsNoticed() async {
        let r = await #expect(processExitsWith: .success, observing: [\.standardErrorContent]) { Self.replaced() }
        #expect(r?.standardErrorContent.isEmpty ?? false, "\(String(decoding: r?.standardErrorContent ?? [], as: UTF8.self))")
    }

    @Test func changeWhileOpenIsRememberedAfterClose() async {
        let r = await #expect(processExitsWith: .success, observing: [\.standardErrorContent]) { Self.changedThenClosed() }
        #expect(r?.standardErrorContent.isEmpty ?? false, "\(String(decoding: r?.standardErrorContent ?? [], as: UTF8.self))")
    }

    @Test func unchangedInputsAndLaterChangesPass() async {
        let r = await #expect(processExitsWith: .success, observing: [\.standardErrorContent]) { Self.unchangedOrChangedAfterClose() }
        #expect(r?.standardErrorContent.isEmpty ?? false, "\(String(decoding: r?.standardErrorContent ?? [], as: UTF8.self))")
    }
}
