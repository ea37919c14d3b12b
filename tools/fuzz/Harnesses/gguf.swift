// libFuzzer harness: a GGUF file (header, metadata, tensor infos), every metadata value decoded
// as inspect --json shows it, every tensor read through the reader and decoded.
import FTQCore
import FTQFormats

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let path = scratchDirectory + "/input.gguf"
    writeFile(path, UnsafeRawBufferPointer(start: data, count: size))
    expectCleanRejection {
        let model = try GGUFReader.open(path)
        for (key, value) in model.metadata {
            _ = JSONText.serialize(.object([(key, value.json)]))
        }
        try exerciseModel(model)
    }
    return 0
}
