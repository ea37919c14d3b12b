import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// What happens to outputs and inputs when ftq is killed, the disk fills up, the output
/// directory is read-only or an input shrinks while it is read (formats/cli.md, "How outputs
/// are written"). Tests that need `mount` (a 1 MiB tmpfs, a read-only tmpfs) record an issue,
/// and so fail, where it is not allowed: they never pass without having run.
@Suite(.serialized) struct FaultInjectionCLITests {
    // MARK: helpers

    /// Starts `ftq ARGS` with no terminal I/O (stderr to `stderrPath` when given).
    static func spawn(_ args: [String], stderrPath: String? = nil) throws -> pid_t {
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&fa, 2, stderrPath ?? "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let argv = [TestSupport.ftqBinary] + args
        var cargs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, TestSupport.ftqBinary, &fa, nil, &cargs, environ)
        guard rc == 0 else { throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .EIO) }
        return pid
    }

    /// Waits for `pid`: its exit status, or nil and the signal that ended it.
    static func wait(_ pid: pid_t) -> (status: Int32?, signal: Int32?) {
        var st: Int32 = 0
        while waitpid(pid, &st, 0) < 0 && errno == EINTR {}
        let low = st & 0x7f
        return low == 0 ? ((st >> 8) & 0xff, nil) : (nil, low)
    }

    /// Polls /proc/PID/io until the process has read (`field` "rchar") or written ("wchar")
    /// `bytes` (true), or has ended (false).
    static func waitUntil(_ pid: pid_t, _ field: String, bytes: Int) -> Bool {
        for _ in 0..<60_000 {
            guard let text = try? String(contentsOfFile: "/proc/\(pid)/io", encoding: .utf8) else { return false }
            let count = text.split(separator: "\n").first { $0.hasPrefix(field + ":") }
                .flatMap { Int($0.dropFirst(field.count + 1).trimmingCharacters(in: .whitespaces)) } ?? 0
            if count >= bytes { return true }
            if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), stat.contains(") Z ") { return false }
            usleep(200)
        }
        return false
    }

    static func waitUntilRead(_ pid: pid_t, bytes: Int) -> Bool { waitUntil(pid, "rchar", bytes: bytes) }

    static func names(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
    }

    static func digest(_ path: String) throws -> String {
        let r = try TestSupport.run("/usr/bin/sha256sum", [path])
        return String(r.stdout.prefix(64))
    }

    /// A safetensors file of one F32 tensor `name` [rows, cols] of varied values, written in
    /// pieces (no whole copy in memory).
    static func floatModel(_ path: String, name: String, rows: Int, cols: Int, seed: UInt32 = 1) throws {
        let count = rows * cols
        var h = Array(#"{"\#(name)":{"dtype":"F32","shape":[\#(rows),\#(cols)],"data_offsets":[0,\#(count * 4)]}}"#.utf8)
        h += [UInt8](repeating: 0x20, count: (8 - h.count % 8) % 8)
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let fh = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? fh.close() }
        try fh.write(contentsOf: withUnsafeBytes(of: UInt64(h.count).littleEndian, Array.init) + h)
        var s = seed
        var done = 0
        while done < count {
            let n = min(1 << 18, count - done)
            var piece = [Float](repeating: 0, count: n)
            for i in 0..<n {
                s = s &* 1_664_525 &+ 1_013_904_223
                piece[i] = Float(Int32(bitPattern: s) >> 8) * 1e-8
            }
            try fh.write(contentsOf: piece.withUnsafeBytes { Data($0) })
            done += n
        }
    }

    /// Mounts a tmpfs at `dir` with `options`; nil when that is not possible, with the reason
    /// recorded as an issue (the test then fails: it has not checked anything).
    static func mountTmpfs(_ dir: String, _ options: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> Bool {
        let r = try TestSupport.run("/bin/mount", ["-t", "tmpfs", "-o", options, "tmpfs", dir])
        if r.status != 0 {
            Issue.record("cannot mount a tmpfs (-o \(options)) at \(dir), so this fault was not injected: \(r.stderr)",
                         sourceLocation: sourceLocation)
            return false
        }
        return true
    }

    static func unmount(_ dir: String) {
        _ = try? TestSupport.run("/bin/umount", [dir])
    }

    /// One command writing one file output, with its inputs prepared in `dir`.
    struct Job: Sendable, CustomTestStringConvertible {
        var label: String
        /// Output file name (in the output directory given to `args`).
        var output: String
        /// Prepares the inputs in a directory; returns the files that must never change.
        var prepare: @Sendable (String) throws -> [String]
        /// The arguments, given the inputs' directory and the output's path.
        var args: @Sendable (String, String) -> [String]
        var testDescription: String { label }
    }

    static let jobs: [Job] = [
        Job(label: "convert", output: "m.safetensors", prepare: { dir in
            try floatModel(dir + "/in.safetensors", name: "w", rows: 4096, cols: 2048)
            return [dir + "/in.safetensors"]
        }, args: { dir, out in ["convert", dir + "/in.safetensors", "-o", out, "--dtype", "bf16", "-q"] }),
        Job(label: "quantize", output: "m.gguf", prepare: { dir in
            try floatModel(dir + "/in.safetensors", name: "blk.0.ffn_up.weight", rows: 2048, cols: 2048)
            return [dir + "/in.safetensors"]
        }, args: { dir, out in ["quantize", dir + "/in.safetensors", "--type", "Q8_0", "-o", out, "-q"] }),
        Job(label: "merge", output: "m.safetensors", prepare: { dir in
            let m = "model.layers.0.mlp.up_proj"
            try floatModel(dir + "/base.safetensors", name: m + ".weight", rows: 2048, cols: 2048)
            try FileManager.default.createDirectory(atPath: dir + "/ad", withIntermediateDirectories: true)
            try #"{"peft_type": "LORA", "r": 8, "lora_alpha": 16}"#.write(toFile: dir + "/ad/adapter_config.json", atomically: false, encoding: .utf8)
            let f = { (n: Int, k: Int) in (0..<n).flatMap { i in withUnsafeBytes(of: (Float((i * k) % 97) * 1e-3).bitPattern.littleEndian, Array.init) } }
            BnBQuantizeCLITests.safetensors([("base_model.model.\(m).lora_A.weight", "F32", [8, 2048], f(8 * 2048, 3)),
                                             ("base_model.model.\(m).lora_B.weight", "F32", [2048, 8], f(2048 * 8, 5))],
                                            to: dir + "/ad/adapter_model.safetensors")
            return [dir + "/base.safetensors", dir + "/ad/adapter_config.json", dir + "/ad/adapter_model.safetensors"]
        }, args: { dir, out in ["merge", dir + "/base.safetensors", dir + "/ad", "-o", out, "-q"] }),
        Job(label: "pack", output: "m.ftqz", prepare: { dir in
            try floatModel(dir + "/model.safetensors", name: "w", rows: 4096, cols: 2048)
            return [dir + "/model.safetensors"]
        }, args: { dir, out in ["pack", dir + "/model.safetensors", "-o", out, "--threads", "2", "--quiet"] }),
    ]

    /// The only names a killed run may leave in its output directory: the output and its two
    /// sidecars (complete), or temporary names that carry the killed process's id.
    static func checkLeftovers(_ outDir: String, job: Job, pid: pid_t, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let finals = [job.output, job.output + ".manifest.json", job.output + ".sha256"]
        for name in names(outDir) where !finals.contains(name) {
            #expect(name.hasPrefix(".") && name.hasSuffix(".\(pid).ftq-tmp"),
                    "\(job.label): unexpected \(name) after SIGKILL of \(pid)", sourceLocation: sourceLocation)
        }
        if names(outDir).contains(job.output) {
            // Present under its final name: complete, with a manifest that checks out.
            let v = try TestSupport.ftq(["verify", outDir + "/" + job.output])
            #expect(v.status == 0, "\(job.label): \(job.output) present after SIGKILL but does not verify: \(v.stdout) \(v.stderr)",
                    sourceLocation: sourceLocation)
        }
    }

    // MARK: SIGKILL

    /// SIGKILL at spread-out random points of a run: nothing ever appears under the final name
    /// unless it is complete and verifies; what is left is named `.NAME.PID.ftq-tmp` after the
    /// killed process; a later run into the same directory succeeds despite the leftovers.
    ///
    /// The points are measured in bytes written (/proc/PID/io), not in time, so that they fall
    /// inside the run however loaded the machine is: one point at random (seeded) in each
    /// eighth of what a whole run writes, one at its very start and one once everything is
    /// written (during the syncs and renames).
    @Test(arguments: jobs)
    func sigkillAtRandomMoments(_ job: Job) throws {
        let dir = try TestSupport.tempDir("ftq-fault")
        defer { TestSupport.cleanup(dir) }
        let inputs = try job.prepare(dir)
        let before = try inputs.map(Self.digest)

        // What a whole run writes: the output and its two sidecars.
        let full = dir + "/full"
        try FileManager.default.createDirectory(atPath: full, withIntermediateDirectories: true)
        let r = try TestSupport.ftq(job.args(dir, full + "/" + job.output))
        try #require(r.status == 0, "\(job.label): \(r.stderr)")
        let written = try Self.names(full).reduce(0) { total, name in
            total + ((try FileManager.default.attributesOfItem(atPath: full + "/" + name)[.size] as? Int) ?? 0)
        }
        try #require(written > 1 << 20, "\(job.label): a whole run writes only \(written) bytes")

        var rng = SplitMix(seed: 0x5eed_0000 &+ UInt64(job.label.utf8.count))
        let eighths = (0..<8).map { (Double($0) + rng.unit()) / 8 }
        let fractions = [0.0] + eighths + [1.0]
        var interrupted = 0, sawTemp = 0
        for (k, fraction) in fractions.enumerated() {
            let outDir = dir + "/kill\(k)"
            try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)
            let pid = try Self.spawn(job.args(dir, outDir + "/" + job.output))
            if fraction > 0 { _ = Self.waitUntil(pid, "wchar", bytes: Int(fraction * Double(written))) }
            kill(pid, SIGKILL)
            let end = Self.wait(pid)
            if end.signal == SIGKILL { interrupted += 1 }
            if Self.names(outDir).contains(where: { $0.hasSuffix(".ftq-tmp") }) { sawTemp += 1 }
            if end.signal == nil {
                #expect(end.status == 0, "\(job.label): a run that was not killed failed")
                #expect(Self.names(outDir).contains(job.output))
            }
            try Self.checkLeftovers(outDir, job: job, pid: pid)
        }
        // The kills must have landed inside runs, or nothing was tested.
        #expect(interrupted >= fractions.count - 1, "\(job.label): only \(interrupted) of \(fractions.count) kills interrupted a run")
        #expect(sawTemp > 0, "\(job.label): no kill left a temporary file to look at")
        // A new run into a directory with leftovers works (--force: sidecars may be in place).
        let again = dir + "/kill0"
        let r2 = try TestSupport.ftq(job.args(dir, again + "/" + job.output) + ["--force"])
        #expect(r2.status == 0, "\(job.label): \(r2.stderr)")
        #expect(try TestSupport.ftq(["verify", again + "/" + job.output]).status == 0)
        #expect(try inputs.map(Self.digest) == before, "\(job.label): an input changed")
    }

    // MARK: disk full, read-only output directory

    /// A 1 MiB tmpfs for outputs of several MiB: exit 4 naming the full disk, nothing under
    /// the final names, no temporary file left, the inputs unchanged.
    @Test(arguments: jobs)
    func diskFull(_ job: Job) throws {
        let dir = try TestSupport.tempDir("ftq-fault")
        defer { TestSupport.cleanup(dir) }
        let inputs = try job.prepare(dir)
        let before = try inputs.map(Self.digest)
        let mnt = dir + "/small"
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        guard try Self.mountTmpfs(mnt, "size=1m") else { return }
        defer { Self.unmount(mnt) }
        let r = try TestSupport.ftq(job.args(dir, mnt + "/" + job.output))
        #expect(r.status == 4, "\(job.label): exit \(r.status): \(r.stderr)")
        #expect(r.stderr.contains("No space left on device") && r.stderr.contains("[io.disk-full]"), "\(job.label): \(r.stderr)")
        #expect(r.stderr.contains(mnt + "/" + job.output), "\(job.label): the error does not name the output: \(r.stderr)")
        #expect(Self.names(mnt) == [], "\(job.label): left \(Self.names(mnt))")
        #expect(try inputs.map(Self.digest) == before)
    }

    /// A read-only file system for the output: exit 4 naming the output, nothing written.
    @Test(arguments: jobs)
    func readOnlyOutputDirectory(_ job: Job) throws {
        let dir = try TestSupport.tempDir("ftq-fault")
        defer { TestSupport.cleanup(dir) }
        let inputs = try job.prepare(dir)
        let before = try inputs.map(Self.digest)
        let mnt = dir + "/ro"
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        // As root, mode bits do not stop writes; a read-only mount does.
        guard try Self.mountTmpfs(mnt, "ro,size=1m") else { return }
        defer { Self.unmount(mnt) }
        let r = try TestSupport.ftq(job.args(dir, mnt + "/" + job.output))
        #expect(r.status == 4, "\(job.label): exit \(r.status): \(r.stderr)")
        #expect(r.stderr.contains("Read-only file system") && r.stderr.contains(mnt + "/" + job.output), "\(job.label): \(r.stderr)")
        #expect(Self.names(mnt) == [])
        #expect(try inputs.map(Self.digest) == before)
    }

    // MARK: an input that shrinks while it is read

    /// The input is cut to 1 KiB while convert streams it: a clean io.short-read (exit 4)
    /// naming the input, no signal (inputs are read with pread, never mapped), nothing under
    /// the final name.
    @Test(arguments: ["convert", "pack", "hash"])
    func inputTruncatedWhileRead(_ command: String) throws {
        let dir = try TestSupport.tempDir("ftq-fault")
        defer { TestSupport.cleanup(dir) }
        let input = dir + "/in.safetensors"
        try Self.floatModel(input, name: "w", rows: 32768, cols: 2048)  // 256 MiB
        let out = dir + "/out"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let args: [String]
        switch command {
        case "convert": args = ["convert", input, "-o", out + "/m.safetensors", "--dtype", "bf16", "-q"]
        case "pack": args = ["pack", input, "-o", out + "/m.ftqz", "--threads", "1", "--quiet"]
        default: args = ["hash", input, "--tensors"]
        }
        let errPath = dir + "/stderr"
        let pid = try Self.spawn(args, stderrPath: errPath)
        // Once it has read 32 MiB (so the header is validated and data is streaming), cut the
        // file under it.
        let reading = Self.waitUntilRead(pid, bytes: 32 << 20)
        #expect(reading, "\(command): never read 32 MiB")
        #expect(truncate(input, 1024) == 0)
        let end = Self.wait(pid)
        let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
        #expect(end.signal == nil, "\(command): killed by signal \(end.signal ?? 0): \(err)")
        if end.status == 0 {
            Issue.record("\(command) finished before the input was truncated: the test did not inject the fault")
            return
        }
        #expect(end.status == 4, "\(command): exit \(end.status ?? -1): \(err)")
        #expect(err.contains(input) && err.contains("[io.short-read]"), "\(command): \(err)")
        #expect(!Self.names(out).contains(where: { !$0.hasSuffix(".ftq-tmp") }), "\(command): \(Self.names(out))")
        #expect(!Self.names(out).contains(where: { $0.hasSuffix(".ftq-tmp") }), "\(command): temporary files left: \(Self.names(out))")
    }

    // MARK: an input rewritten in place while it is read

    /// The jobs above, and dequantize (of a Q8_0 GGUF that quantize makes).
    static let changeJobs: [Job] = jobs + [
        Job(label: "dequantize", output: "m.safetensors", prepare: { dir in
            try floatModel(dir + "/f.safetensors", name: "blk.0.ffn_up.weight", rows: 4096, cols: 2048)
            let r = try TestSupport.ftq(["quantize", dir + "/f.safetensors", "--type", "Q8_0", "-o", dir + "/in.gguf", "-q"])
            try #require(r.status == 0, "quantize: \(r.stderr)")
            return [dir + "/in.gguf"]
        }, args: { dir, out in ["dequantize", dir + "/in.gguf", "-o", out, "-q"] }),
    ]

    /// The state letter of /proc/PID/stat (`R`, `S`, `T` stopped, `Z` ended), nil if gone.
    static func processState(_ pid: pid_t) -> Character? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let paren = text.lastIndex(of: ")") else { return nil }
        return text[text.index(after: paren)...].first { $0 != " " }
    }

    /// Stops `pid` with SIGSTOP: true once it is stopped, false if it ended first.
    static func stop(_ pid: pid_t) -> Bool {
        kill(pid, SIGSTOP)
        for _ in 0..<50_000 {
            switch processState(pid) {
            case "T", "t": return true
            case "Z", "X", nil: return false
            default: usleep(100)
            }
        }
        return false
    }

    /// Negates the last `count` bytes' worth of 4-byte little-endian floats of `path`, in
    /// place (same inode, same size): other values, still finite where they were.
    static func rewriteTail(_ path: String, count: Int) throws {
        let fd = open(path, O_RDWR)
        try #require(fd >= 0)
        defer { close(fd) }
        var st = stat()
        try #require(fstat(fd, &st) == 0)
        let start = (Int(st.st_size) - count) & ~3
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size) - start)
        try #require(bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(start)) } == bytes.count)
        for i in stride(from: 3, to: bytes.count, by: 4) { bytes[i] ^= 0x80 }
        try #require(bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(start)) } == bytes.count)
    }

    static func stamp(_ path: String) -> [Int] {
        var st = stat()
        guard stat(path, &st) == 0 else { return [] }
        return [Int(st.st_ino), Int(st.st_size), st.st_mtim.tv_sec, st.st_mtim.tv_nsec, st.st_ctim.tv_sec, st.st_ctim.tv_nsec]
    }

    /// Another process writes into the input (same size, other bytes) while the command
    /// reads it: `io.input-changed` (exit 4) naming the input, and nothing under the output's
    /// names, no temporary file left, rather than an output that mixes old and new bytes.
    ///
    /// The command is stopped (SIGSTOP) once it has read 4 MiB, so the rewrite lands inside
    /// the run however loaded the machine is; a run that ended before it could be stopped, or
    /// had already put its output in place, is tried again (three times at most).
    @Test(arguments: changeJobs)
    func inputRewrittenInPlaceWhileRead(_ job: Job) throws {
        let dir = try TestSupport.tempDir("ftq-fault")
        defer { TestSupport.cleanup(dir) }
        let inputs = try job.prepare(dir)
        let input = inputs[0]
        let others = try inputs.dropFirst().map(Self.digest)
        let finals = [job.output, job.output + ".manifest.json", job.output + ".sha256"]
        for attempt in 1...3 {
            let outDir = dir + "/out\(attempt)"
            try FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)
            let errPath = dir + "/stderr\(attempt)"
            let pid = try Self.spawn(job.args(dir, outDir + "/" + job.output), stderrPath: errPath)
            let reading = Self.waitUntilRead(pid, bytes: 4 << 20)
            let stopped = Self.stop(pid)
            let inTime = reading && stopped && !Self.names(outDir).contains(where: finals.contains)
            let before = Self.stamp(input)
            if inTime { try Self.rewriteTail(input, count: 1 << 20) }
            let after = Self.stamp(input)
            kill(pid, SIGCONT)
            let end = Self.wait(pid)
            let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
            guard inTime else { continue }
            // The rewrite kept the inode and size and moved the times: the fault ftq must see.
            try #require(before.count == 6 && after.count == 6 && before[0...1] == after[0...1] && before != after,
                         "\(job.label): the rewrite did not change the input's times: \(before) -> \(after)")
            #expect(end.signal == nil, "\(job.label): killed by signal \(end.signal ?? 0): \(err)")
            #expect(end.status == 4, "\(job.label): exit \(end.status ?? -1): \(err)")
            #expect(err.contains(input + ": changed while ftq was reading it") && err.contains("[io.input-changed]"),
                    "\(job.label): \(err)")
            #expect(Self.names(outDir) == [], "\(job.label): left \(Self.names(outDir))")
            #expect(try inputs.dropFirst().map(Self.digest) == others, "\(job.label): another input changed")
            return
        }
        Issue.record("\(job.label): three runs ended before they could be stopped: the fault was not injected")
    }
}

/// A small seeded generator (SplitMix64), for reproducible "random" moments.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) * 0x1p-53 }
}
