// Shared by every harness: scratch files in memory (/dev/shm), the repository's testdata, and
// the one rule every harness checks besides "no crash": a rejected input is an FTQError.
#if canImport(Glibc)
import Glibc
#endif
import FTQCore

/// The repository root (this file is tools/fuzz/Harnesses/Support.swift).
let repositoryRoot: String = {
    var parts = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(4)
    return parts.joined(separator: "/")
}()

/// A directory for this process's files, removed at a normal exit: FTQ_FUZZ_SCRATCH (run.sh
/// sets it, and removes it after a crash), or one under /dev/shm (TMPDIR without /dev/shm).
let scratchDirectory: String = {
    let base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : (getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp")
    let dir = getenv("FTQ_FUZZ_SCRATCH").map { String(cString: $0) } ?? "\(base)/ftq-fuzz-\(getpid())"
    mkdir(dir, 0o700)
    atexit { removeTree(scratchDirectory) }
    return dir
}()

/// Removes a directory and everything in it.
func removeTree(_ dir: String) {
    guard let d = opendir(dir) else { return }
    var names: [String] = []
    while let e = readdir(d) {
        let name = withUnsafePointer(to: e.pointee.d_name) {
            $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
        }
        if name != "." && name != ".." { names.append(name) }
    }
    closedir(d)
    for n in names {
        let p = dir + "/" + n
        if unlink(p) != 0 { removeTree(p) }
    }
    rmdir(dir)
}

/// Writes `bytes` to `path`, replacing it.
func writeFile(_ path: String, _ bytes: UnsafeRawBufferPointer) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    guard fd >= 0 else { fatalError("cannot create \(path): \(systemError(errno))") }
    var done = 0
    while done < bytes.count {
        let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
        guard n > 0 else { fatalError("cannot write \(path): \(systemError(errno))") }
        done += n
    }
    close(fd)
}

func writeFile(_ path: String, _ bytes: [UInt8]) {
    bytes.withUnsafeBytes { writeFile(path, $0) }
}

/// The bytes of a file of the repository (seed material for harnesses that need companions).
func repositoryFile(_ relative: String) -> [UInt8] {
    let path = repositoryRoot + "/" + relative
    guard let f = try? InputFile(path), let bytes = try? f.read(at: 0, count: f.size) else {
        fatalError("cannot read \(path)")
    }
    return bytes
}

/// The fuzzer's input as bytes.
func input(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
    size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size))
}

/// Runs `body`; an FTQError is the expected way to reject an input, and its message must
/// render (it is what the user sees). Any other error is a finding: it would reach the user
/// without an exit code of its own.
func expectCleanRejection(_ body: () throws -> Void) {
    do {
        try body()
    } catch let e as FTQError {
        precondition(!e.code.isEmpty, "an FTQError without a code")
        _ = e.description
    } catch {
        fatalError("an error that is not an FTQError: \(error)")
    }
}

/// When FTQ_FUZZ_SEED_DIR is set (tools/fuzz/run.sh sets it), harnesses whose formats have no
/// files in testdata/ write generated seeds there before libFuzzer reads its corpus.
func writeSeeds(_ seeds: [(String, [UInt8])]) {
    guard let dir = getenv("FTQ_FUZZ_SEED_DIR").map({ String(cString: $0) }) else { return }
    for (name, bytes) in seeds { writeFile(dir + "/generated-" + name, bytes) }
}

import FTQFormats

/// Reads every tensor of an opened model through the reader, and decodes the first and last
/// windows of every tensor that has a float32 reading (plain floats, ggml blocks,
/// bitsandbytes weights with their quant state) as `ftq compare` does.
func exerciseModel(_ model: Model) throws {
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 64)
    defer { buffer.deallocate() }
    var sum: UInt8 = 0
    for t in model.tensors {
        try model.forEachChunk(of: t, chunkBytes: 1 << 16, buffer: buffer) { chunk in
            if let last = chunk.last { sum &+= last }
        }
    }
    let logical = try LogicalModel(model)
    let out = UnsafeMutableBufferPointer<Float>.allocate(capacity: LogicalModel.window)
    defer { out.deallocate() }
    for t in logical.tensors where t.count > 0 {
        let decoder = try logical.decoder(t)
        let lastStart = (t.count - 1) / LogicalModel.granule * LogicalModel.granule
        for start in Set([0, lastStart]) {
            let n = min(LogicalModel.window, t.count - start)
            try decoder.decode(start: start, into: UnsafeMutableBufferPointer(rebasing: out[0..<n]))
        }
    }
    _ = sum
}
