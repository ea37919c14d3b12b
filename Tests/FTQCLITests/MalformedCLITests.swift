import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// One line of testdata/malformed/README.md.
struct MalformedCLIEntry: Sendable, CustomTestStringConvertible {
    let name: String
    let code: String
    var testDescription: String { name }

    var path: String { TestSupport.testdata("malformed/" + name) }
    /// The text the error line must contain to name the file: the path itself, or for an input
    /// inside a subdirectory (a split set, a sharded model) that directory.
    var namedAs: String {
        if name.hasSuffix("/") { return path }
        if let slash = name.firstIndex(of: "/") { return TestSupport.testdata("malformed/" + name[..<slash]) + "/" }
        return path
    }
}

/// Runs the built ftq with a wall-clock deadline and an address-space limit, and reports how
/// it ended and its peak resident memory. The memory is measured by GNU time, which starts ftq
/// from its own small process: a process spawned directly by the test runner would inherit
/// the runner's memory high-water mark, whatever ftq itself used.
enum LimitedRun {
    struct Outcome {
        var exitStatus: Int32?
        var signal: Int32?
        var timedOut: Bool
        var maxRSSKiB: Int
        var stdout: [UInt8]
        var stderr: [UInt8]
        var stderrText: String { String(decoding: stderr, as: UTF8.self) }
    }

    static let addressSpaceKiB = 1 << 20  // 1 GiB
    static let peakRSSLimitKiB = 64 << 10  // 64 MiB

    static func entries() -> [MalformedCLIEntry] {
        guard let text = try? String(contentsOfFile: TestSupport.testdata("malformed/README.md"), encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            guard line.hasPrefix("- `") else { return nil }
            let q = line.split(separator: "`", omittingEmptySubsequences: false)
            guard q.count >= 3 else { return nil }
            return MalformedCLIEntry(name: String(q[1]), code: String(q[q.count - 2]))
        }
    }

    static func ftq(_ args: [String], timeout: Double = 15) throws -> Outcome {
        let dir = try TestSupport.tempDir("ftq-malformed-run")
        defer { TestSupport.cleanup(dir) }
        let outPath = dir + "/stdout", errPath = dir + "/stderr", rssPath = dir + "/rss"
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&fa, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&fa, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        // POSIX sh: limit the address space, then become GNU time, which runs ftq and writes its
        // peak RSS (and, if it was killed, the signal) to rssPath.
        let argv = ["/bin/sh", "-c", "ulimit -v \(addressSpaceKiB) && exec /usr/bin/time -f %M -o \"$0\" \"$@\"",
                    rssPath, TestSupport.ftqBinary] + args
        var cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attr, 0)
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, "/bin/sh", &fa, &attr, &cargs, environ)
        guard rc == 0 else { throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .EIO) }
        var status: Int32 = 0
        var usage = rusage()
        var timedOut = false
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let r = wait4(pid, &status, WNOHANG, &usage)
            if r == pid { break }
            if r < 0 && errno != EINTR { throw POSIXError(.ECHILD) }
            if Date() > deadline {
                kill(-pid, SIGKILL)
                _ = wait4(pid, &status, 0, &usage)
                timedOut = true
                break
            }
            usleep(2000)
        }
        let low = status & 0x7f
        let read = { (p: String) in Array((try? Data(contentsOf: URL(fileURLWithPath: p))) ?? Data()) }
        // GNU time's report: "Command terminated by signal N" when ftq was killed, then %M.
        let report = String(decoding: read(rssPath), as: UTF8.self).split(separator: "\n").map(String.init)
        let rss = report.last.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) } ?? -1
        var signal: Int32? = low != 0 && low != 0x7f ? low : nil
        if let line = report.first(where: { $0.hasPrefix("Command terminated by signal ") }) {
            signal = Int32(line.dropFirst("Command terminated by signal ".count))
        }
        return Outcome(exitStatus: signal == nil && low == 0 ? (status >> 8) & 0xff : nil,
                       signal: signal, timedOut: timedOut, maxRSSKiB: rss,
                       stdout: read(outPath), stderr: read(errPath))
    }

    /// Checks a rejected input: exit status, one clean error line naming `named`, no signal,
    /// no hang, little memory.
    static func expectRejected(_ o: Outcome, status: Int32 = 3, named: String, mentions: [String] = [],
                               sourceLocation: SourceLocation = #_sourceLocation) {
        if o.timedOut {
            Issue.record("did not finish in time (killed)", sourceLocation: sourceLocation)
            return
        }
        if let sig = o.signal {
            let first = o.stderrText.split(separator: "\n").first ?? ""
            Issue.record("killed by signal \(sig) (peak RSS \(o.maxRSSKiB) KiB): \(first)", sourceLocation: sourceLocation)
            return
        }
        #expect(o.exitStatus == status, "exit \(o.exitStatus.map(String.init) ?? "-"): \(o.stderrText.prefix(300))",
                sourceLocation: sourceLocation)
        #expect(o.maxRSSKiB > 0 && o.maxRSSKiB < peakRSSLimitKiB, "peak RSS \(o.maxRSSKiB) KiB", sourceLocation: sourceLocation)
        let err = o.stderrText
        #expect(err.hasPrefix("ftq: error: "), "stderr: \(err.prefix(300).debugDescription)", sourceLocation: sourceLocation)
        #expect(err.hasSuffix("\n") && o.stderr.filter { $0 == 0x0a }.count == 1,
                "stderr is not exactly one line: \(err.prefix(300).debugDescription)", sourceLocation: sourceLocation)
        #expect(!o.stderr.dropLast().contains { $0 < 0x20 || $0 == 0x7f },
                "control characters on stderr: \(err.prefix(300).debugDescription)", sourceLocation: sourceLocation)
        #expect(err.contains(named), "stderr does not name \(named): \(err.prefix(300))", sourceLocation: sourceLocation)
        for m in mentions {
            #expect(err.contains(m), "\"\(m)\" not in: \(err.prefix(300))", sourceLocation: sourceLocation)
        }
        #expect(o.stdout.isEmpty, "stdout: \(String(decoding: o.stdout.prefix(200), as: UTF8.self))", sourceLocation: sourceLocation)
    }

    /// A sparse file of `size` bytes that starts with `head`.
    static func sparseFile(_ path: String, head: [UInt8], size: Int) throws {
        _ = FileManager.default.createFile(atPath: path, contents: Data(head))
        guard truncate(path, off_t(size)) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }
}

/// Little-endian GGUF header bytes.
struct GGUFBytes {
    var b: [UInt8] = Array("GGUF".utf8)
    mutating func u8(_ v: UInt8) { b.append(v) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { b += $0 } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { b += $0 } }
    mutating func string(_ s: String) { u64(UInt64(s.utf8.count)); b += Array(s.utf8) }
}

@Suite struct MalformedCLITests {
    @Test func readmeIsReadable() {
        #expect(LimitedRun.entries().count > 100)
    }

    /// `ftq inspect` on every corpus input: exit 3 (4 for io.*), one line on stderr that names
    /// the file, no signal, no hang, little memory. Valid controls exit 0 with nothing on stderr.
    @Test(arguments: LimitedRun.entries())
    func inspectCorpusEntry(_ e: MalformedCLIEntry) throws {
        let o = try LimitedRun.ftq(["inspect", e.path])
        if e.code == "ok" {
            #expect(!o.timedOut && o.signal == nil)
            #expect(o.exitStatus == 0, "\(o.stderrText)")
            #expect(o.stderr.isEmpty)
            #expect(o.maxRSSKiB < LimitedRun.peakRSSLimitKiB, "peak RSS \(o.maxRSSKiB) KiB")
            let j = try LimitedRun.ftq(["inspect", "--json", e.path])
            #expect(j.exitStatus == 0)
            #expect((try? JSONSerialization.jsonObject(with: Data(j.stdout))) != nil, "inspect --json is not JSON")
            return
        }
        LimitedRun.expectRejected(o, status: e.code.hasPrefix("io.") ? 4 : 3, named: e.namedAs)
        let j = try LimitedRun.ftq(["inspect", "--json", e.path])
        LimitedRun.expectRejected(j, status: e.code.hasPrefix("io.") ? 4 : 3, named: e.namedAs)
    }

    /// CVE-2024-34359: the Jinja chat template is printed verbatim and never rendered.
    @Test func chatTemplateIsPrintedVerbatim() throws {
        let marker = "/tmp/ftq-jinja-was-rendered"
        try? FileManager.default.removeItem(atPath: marker)
        let path = TestSupport.testdata("malformed/ok_chat_template_jinja.gguf")
        let expected = #"{% for message in messages %}{{ '<|' + message['role'] + '|>\n' + message['content'] }}{% endfor %}"#
            + #"{{ self.__init__.__globals__.__builtins__.__import__('os').popen('touch /tmp/ftq-jinja-was-rendered').read() }}"#
            + #"{{ cycler.__init__.__globals__.os.system('id') }}"# + "\n" + #"{# ftq must never render this #}"#
        let j = try LimitedRun.ftq(["inspect", "--json", path])
        #expect(j.exitStatus == 0 && j.stderr.isEmpty)
        let obj = try JSONSerialization.jsonObject(with: Data(j.stdout)) as? [String: Any]
        let meta = obj?["metadata"] as? [String: Any]
        #expect(meta?["tokenizer.chat_template"] as? String == expected)
        #expect((obj?["metadata_types"] as? [String: Any])?["tokenizer.chat_template"] as? String == "string")
        #expect(Set(meta?.keys.map { $0 } ?? []) == ["general.architecture", "tokenizer.chat_template"])
        let t = try LimitedRun.ftq(["inspect", path])
        #expect(t.exitStatus == 0 && t.stderr.isEmpty)
        let text = String(decoding: t.stdout, as: UTF8.self)
        #expect(text.contains("tokenizer.chat_template: string = \"{% for message in messages %}"))
        #expect(!text.contains("uid="))
        #expect(!FileManager.default.fileExists(atPath: marker))
    }

    @Test func fifoExitsWithoutBlocking() throws {
        let tmp = try TestSupport.tempDir("ftq-malformed")
        defer { TestSupport.cleanup(tmp) }
        for name in ["model.safetensors", "model.gguf", "m-00001-of-00002.gguf"] {
            let fifo = tmp + "/" + name
            #expect(mkfifo(fifo, 0o600) == 0)
            let o = try LimitedRun.ftq(["inspect", fifo], timeout: 10)
            LimitedRun.expectRejected(o, named: fifo, mentions: ["FIFO"])
        }
    }

    @Test func devNullExits3() throws {
        let o = try LimitedRun.ftq(["inspect", "/dev/null"], timeout: 10)
        LimitedRun.expectRejected(o, named: "/dev/null", mentions: ["not a regular file"])
    }

    @Test func directoryWhereAGGUFFileIsExpected() throws {
        let tmp = try TestSupport.tempDir("ftq-malformed")
        defer { TestSupport.cleanup(tmp) }
        let dir = tmp + "/model.gguf"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        LimitedRun.expectRejected(try LimitedRun.ftq(["inspect", dir]), named: dir, mentions: ["directory"])
        // The second part of a split set is a directory.
        try FileManager.default.copyItem(atPath: TestSupport.testdata("malformed/ok_split/m-00001-of-00002.gguf"),
                                         toPath: tmp + "/m-00001-of-00002.gguf")
        try FileManager.default.createDirectory(atPath: tmp + "/m-00002-of-00002.gguf", withIntermediateDirectories: true)
        LimitedRun.expectRejected(try LimitedRun.ftq(["inspect", tmp + "/m-00001-of-00002.gguf"]),
                                  named: tmp + "/m-00002-of-00002.gguf", mentions: ["directory"])
    }

    @Test func symlinkLoopIsAnIOError() throws {
        let tmp = try TestSupport.tempDir("ftq-malformed")
        defer { TestSupport.cleanup(tmp) }
        let loop = tmp + "/loop.gguf"
        try FileManager.default.createSymbolicLink(atPath: loop, withDestinationPath: "loop.gguf")
        let o = try LimitedRun.ftq(["inspect", loop])
        LimitedRun.expectRejected(o, status: 4, named: loop, mentions: ["symbolic links"])
    }

    @Test func shardSymlinkOutsideTheDirectory() throws {
        let tmp = try TestSupport.tempDir("ftq-malformed")
        defer { TestSupport.cleanup(tmp) }
        let dir = tmp + "/model"
        try FileManager.default.copyItem(atPath: TestSupport.testdata("malformed/ok_sharded"), toPath: dir)
        let shard = dir + "/model-00002-of-00002.safetensors"
        try FileManager.default.moveItem(atPath: shard, toPath: tmp + "/outside.safetensors")
        try FileManager.default.createSymbolicLink(atPath: shard, withDestinationPath: "../outside.safetensors")
        LimitedRun.expectRejected(try LimitedRun.ftq(["inspect", dir]), named: dir,
                                  mentions: ["model-00002-of-00002.safetensors", "outside the model directory"])
    }

    // MARK: sparse files that claim huge counts and lengths inside their (apparent) size

    /// 64 GiB sparse files (no disk space used): the counts pass "bounded by the bytes that
    /// remain", yet nothing may be allocated in proportion to them before the entries are read.
    static let sparseSize = 64 << 30

    @Test func hugeKeyValueCountInAHugeFile() throws {
        let tmp = try TestSupport.tempDir("ftq-malformed")
        defer { TestSupport.cleanup(tmp) }
        var g = GGUFBytes()
        g.u32(3); g.u64(0); g.u64(1 << 32)  // 2^32 key-values (CVE-2024-23605); the first key is empty
        let p = tmp + "/kv.gguf"
        try LimitedRun.sparseFile(p, head: g.b, size: Self.sparseSize)
        LimitedRun.expectRejected(try LimitedRun.ftq(["inspect", p]), named: p, mentions: ["empty metadata key at byte 24"])
    }

    @Test func hugeTensorCountInAHugeFile() throws {
        let tmp = try TestSupport.tempDir("ftq-malformed")
        defer { TestSupport.cleanup(tmp) }
        var g = GGUFBytes()
        g.u32(3); g.u64(1 << 31); g.u64(0)  // 2^31 tensor infos (CVE-2024-21836); the first name is empty
        let p = tmp + "/tensors.gguf"
        try LimitedRun.sparseFile(p, head: g.b, size: Self.sparseSize)
        LimitedRun.expectRejected(try LimitedRun.ftq(["inspect", p]), named: p, mentions: ["empty tensor name at byte 24"])
    }

    @Test func hugeArrayInAHugeFile() throws {
        let tmp = try TestSupport.tempDir("ftq-malformed")
        defer { TestSupport.cleanup(tmp) }
        var g = GGUFBytes()
        g.u32(3); g.u64(0); g.u64(1)
        g.string("flags"); g.u32(9); g.u32(7); g.u64(1 << 35)  // array of 2^35 bools (CVE-2024-21825)
        g.u8(0); g.u8(2)  // the second is not a bool
        let p = tmp + "/array.gguf"
        try LimitedRun.sparseFile(p, head: g.b, size: Self.sparseSize)
        // 32 GiB of booleans is far over the per-value limit: refused before any is read.
        LimitedRun.expectRejected(try LimitedRun.ftq(["inspect", p]), named: p, mentions: ["\"flags\"", "limit"])
    }

    /// GGUF keys are at most 65535 bytes; an 8 GiB key is rejected, not read into memory.
    @Test func hugeKeyLengthInAHugeFile() throws {
        let tmp = try TestSupport.tempDir("ftq-malformed")
        defer { TestSupport.cleanup(tmp) }
        var g = GGUFBytes()
        g.u32(3); g.u64(0); g.u64(1)
        g.u64(1 << 33)
        let p = tmp + "/key.gguf"
        try LimitedRun.sparseFile(p, head: g.b, size: Self.sparseSize)
        LimitedRun.expectRejected(try LimitedRun.ftq(["inspect", p]), named: p, mentions: ["key", "byte 24"])
    }
}
