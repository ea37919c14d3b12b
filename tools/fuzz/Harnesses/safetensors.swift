// libFuzzer harness: a safetensors file (header, then every tensor read through the reader and
// decoded as compare decodes it, bitsandbytes quant states included).
import FTQCore
import FTQFormats

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let path = scratchDirectory + "/input.safetensors"
    writeFile(path, UnsafeRawBufferPointer(start: data, count: size))
    expectCleanRejection {
        try exerciseModel(try SafetensorsFile.open(path))
    }
    return 0
}
