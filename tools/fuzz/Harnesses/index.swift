// libFuzzer harness: model.safetensors.index.json, in a directory holding the two valid shards
// of testdata/malformed/ok_sharded (so that valid-looking indexes reach the shard checks).
#if canImport(Glibc)
import Glibc
#endif
import FTQCore
import FTQFormats

let modelDirectory: String = {
    let dir = scratchDirectory + "/model"
    mkdir(dir, 0o700)
    for shard in ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"] {
        writeFile(dir + "/" + shard, repositoryFile("testdata/malformed/ok_sharded/" + shard))
    }
    return dir
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let path = modelDirectory + "/model.safetensors.index.json"
    writeFile(path, UnsafeRawBufferPointer(start: data, count: size))
    expectCleanRejection {
        let model = try ShardedModel.open(directory: modelDirectory)
        try exerciseModel(model)
    }
    return 0
}
