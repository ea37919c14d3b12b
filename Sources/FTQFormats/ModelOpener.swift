import FTQCore

/// Opens whatever a user points ftq at: a safetensors file, a Hugging Face directory (single
/// file or sharded), an index file, a GGUF file or one part of a split GGUF set.
public enum ModelOpener {
    public static func open(_ path: String) throws -> Model {
        switch PathKind.of(path) {
        case .missing:
            throw FTQError.io("io.not-found", file: path, "no such file or directory")
        case .directory:
            return try ShardedModel.open(directory: path)
        case let .inaccessible(reason):
            throw FTQError.io("io.open", file: path, "cannot open: \(reason)")
        case let .other(kind):
            throw FTQError.invalid("input.not-regular-file", file: path, "not a regular file (\(kind))")
        case .regularFile:
            if path.hasByteSuffix(".safetensors.index.json") { return try ShardedModel.open(index: path) }
            let f = try InputFile(path)
            let magic = try f.read(at: 0, count: min(4, f.size))
            let ggufMagics = ["GGUF", "GGML", "GGMF", "GGJT", "GGLA", "lmgg", "fmgg", "tjgg", "algg"].map { Array($0.utf8) }
            if ggufMagics.contains(magic) || path.hasByteSuffix(".gguf") {
                return try GGUFReader.open(path)
            }
            return try SafetensorsFile.open(path)
        }
    }
}
