// libFuzzer harness: an .ftqz pack, opened and checked (every frame decompressed and hashed).
//
// The index is covered by a SHA-256 in the trailer, which random mutations would almost never
// match: when the trailer places the index consistently, the harness writes the index's true
// digest into the trailer, so that mutated indexes reach the index rules and the frames.
#if canImport(Glibc)
import Glibc
#endif
import FTQCore
@testable import FTQArtifacts

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: OpaquePointer?, _ argv: OpaquePointer?) -> Int32 {
    guard getenv("FTQ_FUZZ_SEED_DIR") != nil else { return 0 }
    let dir = scratchDirectory + "/seed"
    mkdir(dir, 0o700)
    writeFile(dir + "/model.safetensors", repositoryFile("testdata/malformed/ok_valid.safetensors"))
    writeFile(dir + "/model.gguf", repositoryFile("testdata/malformed/ok_valid.gguf"))
    writeFile(dir + "/config.json", Array("{\"model_type\": \"llama\"}\n".utf8))
    var seeds: [(String, [UInt8])] = []
    for (name, files) in [("one.ftqz", ["config.json"]), ("models.ftqz", ["config.json", "model.safetensors", "model.gguf"])] {
        do {
            let out = try OutputFile(dir + "/" + name, overwrite: true)
            _ = try PackWriter.write(files.map { PackInput(path: dir + "/" + $0, name: $0) }, to: out, level: 3, threads: 1,
                                     progress: Progress(label: "pack", totalBytes: 0, quiet: true))
            try out.commit()
            let f = try InputFile(dir + "/" + name)
            seeds.append((name, try f.read(at: 0, count: f.size)))
        } catch {
            fatalError("cannot make the seed pack \(name): \(error)")
        }
    }
    writeSeeds(seeds)
    return 0
}

/// Writes the SHA-256 of the index the trailer points at into the trailer, when it points
/// inside the file.
func fixIndexDigest(_ bytes: inout [UInt8]) {
    let size = bytes.count
    guard size >= PackFormat.headerSize + PackFormat.trailerSize else { return }
    let t = size - PackFormat.trailerSize
    let offset = PackFormat.readLE64(bytes[t..<(t + 8)]), length = PackFormat.readLE64(bytes[(t + 8)..<(t + 16)])
    guard offset >= UInt64(PackFormat.headerSize), offset <= UInt64(t), UInt64(t) - offset == length else { return }
    let h = SHA256Hasher()
    h.update(Array(bytes[Int(offset)..<t]))
    bytes.replaceSubrange((t + 16)..<(t + 48), with: hexBytes(h.finalizeHex()))
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    var bytes = input(data, size)
    fixIndexDigest(&bytes)
    let path = scratchDirectory + "/input.ftqz"
    writeFile(path, bytes)
    expectCleanRejection {
        let reader = try PackReader(path)
        try reader.check(threads: 1)
    }
    return 0
}
