// libFuzzer harness: a tokenizer.json as `ftq convert HFDIR -o model.gguf` reads it for a
// Llama-family directory (LlamaTokenizer.metadata), for a model of 512 tokens.
#if canImport(Glibc)
import Glibc
#endif
import FTQCore
@testable import FTQFormats

let tokenizerDirectory: String = {
    let dir = scratchDirectory + "/tokenizer"
    mkdir(dir, 0o700)
    return dir
}()

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: OpaquePointer?, _ argv: OpaquePointer?) -> Int32 {
    let gpt2 = #"""
    {"version": "1.0", "added_tokens": [{"id": 5, "content": "<|endoftext|>", "special": true}],
     "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
     "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "\u0120a": 3, "c": 4},
               "merges": ["a b", "\u0120 a"]}}
    """#
    let llama3 = #"""
    {"added_tokens": [{"id": 7, "content": "<|begin_of_text|>", "special": true}],
     "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
       {"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}, "behavior": "Isolated", "invert": false},
       {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]},
     "model": {"type": "BPE", "vocab": {"x": 0, "y": 1, "xy": 2}, "merges": [["x", "y"]]}}
    """#
    writeSeeds([("gpt2.json", Array(gpt2.utf8)), ("llama3.json", Array(llama3.utf8))])
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    writeFile(tokenizerDirectory + "/tokenizer.json", UnsafeRawBufferPointer(start: data, count: size))
    expectCleanRejection {
        _ = try LlamaTokenizer.metadata(directory: tokenizerDirectory, vocabSize: 512, pre: nil, notice: nil)
    }
    return 0
}
