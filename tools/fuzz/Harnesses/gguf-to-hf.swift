// libFuzzer harness: a GGUF written as a Hugging Face directory (`ftq convert MODEL.gguf -o
// DIR`): for a llama GGUF, GGUFToHF's config.json from the llama.* keys, the tokenizer files from
// the tokenizer.* arrays, rope_freqs back to rope_scaling, the q/k rows put back, every tensor
// decoded and written; each output is removed after the run.
import FTQCore
import FTQFormats

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let path = scratchDirectory + "/input.gguf"
    let out = scratchDirectory + "/hf"
    writeFile(path, UnsafeRawBufferPointer(start: data, count: size))
    expectCleanRejection {
        let model = try GGUFReader.open(path)
        guard GGUFToHF.applies(to: model) else { return }
        defer { removeTree(out) }
        _ = try GGUFToHF(model: model, options: ConvertOptions(overwrite: true, quiet: true))
            .run(to: .hfDirectory(out, maxShardSize: Converter.defaultMaxShardSize))
    }
    return 0
}
