// libFuzzer harness: an ftq manifest (ftq-manifest.json / NAME.manifest.json). A manifest that
// parses must serialize to bytes that parse to the same manifest.
import FTQCore
import FTQArtifacts

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: OpaquePointer?, _ argv: OpaquePointer?) -> Int32 {
    let digest = String(repeating: "ab", count: 32)
    let m = Manifest(toolVersion: "0.1.0", command: ["ftq", "convert", "in", "out.gguf"],
                     options: [("dtype", .string("f16")), ("threads", .int(2))],
                     inputs: [Manifest.Input(path: "in/model.safetensors", size: 168, sha256: digest)],
                     outputs: [Manifest.Output(path: "out.gguf", size: 256, sha256: digest, tensors: [
                         Manifest.Tensor(name: "a", dtype: "F16", shape: [2, 2], offset: 64, nbytes: 8, sha256: digest),
                         Manifest.Tensor(name: "b\u{00e9}", dtype: "Q4_0", shape: [32], offset: 96, nbytes: 18, sha256: digest),
                     ])],
                     report: .object([("rmse", .double(0.25))]))
    writeSeeds([("manifest.json", m.bytes)])
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = input(data, size)
    expectCleanRejection {
        let m = try Manifest.parse(bytes)
        let again = try Manifest.parse(m.bytes)
        precondition(again == m, "a manifest does not survive serializing and parsing again")
    }
    return 0
}
