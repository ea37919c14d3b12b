// libFuzzer harness: a PEFT adapter_config.json, beside the weights of the llama-lora golden
// adapter (so that valid-looking configs reach the rank and module checks).
#if canImport(Glibc)
import Glibc
#endif
import FTQCore
import FTQFormats

let adapterDirectory: String = {
    let dir = scratchDirectory + "/adapter"
    mkdir(dir, 0o700)
    writeFile(dir + "/adapter_model.safetensors", repositoryFile("testdata/golden/peft/llama-lora/adapter_model.safetensors"))
    return dir
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    writeFile(adapterDirectory + "/adapter_config.json", UnsafeRawBufferPointer(start: data, count: size))
    expectCleanRejection {
        let adapter = try LoRAAdapter(directory: adapterDirectory)
        precondition(adapter.maxRank >= 1 && adapter.maxRank <= LoRAAdapter.rankLimit)
        for m in adapter.modules { precondition(m.rank >= 1 && m.rank <= adapter.maxRank) }
    }
    return 0
}
