// libFuzzer harness: a SentencePiece `tokenizer.model` as `ftq convert HFDIR -o model.gguf`
// reads it for a Llama-family directory (LlamaTokenizer.metadata with no tokenizer.json: the
// protobuf reader SentencePieceModel, then the vocabulary it becomes), for a 512-token model.
#if canImport(Glibc)
import Glibc
#endif
import FTQCore
@testable import FTQFormats

let modelDirectory: String = {
    let dir = scratchDirectory + "/sentencepiece"
    mkdir(dir, 0o700)
    return dir
}()

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: OpaquePointer?, _ argv: OpaquePointer?) -> Int32 {
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    expectCleanRejection { _ = try SentencePieceModel.parse(Array(bytes)) }
    writeFile(modelDirectory + "/tokenizer.model", bytes)
    expectCleanRejection {
        _ = try LlamaTokenizer.metadata(directory: modelDirectory, vocabSize: 512, pre: nil, architecture: "llama", notice: nil)
    }
    return 0
}
