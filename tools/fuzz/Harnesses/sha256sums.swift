// libFuzzer harness: a SHA256SUMS file. A list that parses must format to text that parses to
// the same entries.
import FTQCore
import FTQArtifacts

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: OpaquePointer?, _ argv: OpaquePointer?) -> Int32 {
    let d = String(repeating: "0123456789abcdef", count: 4)
    writeSeeds([("SHA256SUMS", ChecksumList.format([
        ChecksumList.Entry(sha256: d, path: "model.safetensors"),
        ChecksumList.Entry(sha256: d, path: "dir/with space\\and\nnewline"),
        ChecksumList.Entry(sha256: d, path: "caf\u{00e9}.json"),
    ]))])
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = input(data, size)
    expectCleanRejection {
        let entries = try ChecksumList.parse(bytes)
        let again = try ChecksumList.parse(ChecksumList.format(entries))
        precondition(again == entries, "a checksum list does not survive formatting and parsing again")
    }
    return 0
}
