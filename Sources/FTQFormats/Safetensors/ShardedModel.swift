#if canImport(Glibc)
import Glibc
#endif
import FTQCore

/// Hugging Face model directories: `model.safetensors`, or shards named by
/// `model.safetensors.index.json` (formats/safetensors.md, "Sharded directories").
public enum ShardedModel {
    public static let indexName = "model.safetensors.index.json"
    public static let singleName = "model.safetensors"

    /// Opens a directory as one model (rules D1-D8).
    public static func open(directory dir: String) throws -> Model {
        let names = try listDirectory(dir)
        let indexes = names.filter { $0.hasByteSuffix(".safetensors.index.json") }.sorted()
        let indexName: String?
        if indexes.contains(Self.indexName) {
            indexName = Self.indexName
        } else if indexes.count == 1 {
            indexName = indexes[0]
        } else if indexes.count > 1 {
            throw FTQError.invalid("index.ambiguous", file: dir,
                "several index files (\(indexes.joined(separator: ", "))) and none is \(Self.indexName): name the one to read")
        } else {
            indexName = nil
        }
        guard let indexName else {
            // D1: no index: exactly one safetensors file.
            let files = names.filter { $0.hasByteSuffix(".safetensors") }.sorted()
            if files.count == 1 {
                return try relabel(SafetensorsFile.open(joinPath(dir, files[0])), path: dir)
            }
            if files.isEmpty {
                throw FTQError.invalid("input.no-model", file: dir, "no .safetensors file and no \(Self.indexName) in this directory")
            }
            throw FTQError.invalid("index.missing", file: dir,
                "\(files.count) .safetensors files but no \(Self.indexName) saying which tensors each holds")
        }
        // D2: a stray single-file model beside shards.
        let base = String(indexName.dropLast(".index.json".count))
        if names.contains(where: { ExactName($0) == ExactName(base) }) {
            throw FTQError.invalid("index.stray-single-file", file: dir,
                "both \(base) and \(indexName) are present: it is not clear which is the model; remove the stale one")
        }
        return try open(index: joinPath(dir, indexName))
    }

    /// Opens a model from its index file.
    public static func open(index indexPath: String) throws -> Model {
        let (dir, _) = splitPath(indexPath)
        let indexFile = try InputFile(indexPath)
        guard indexFile.size <= SafetensorsHeader.maxHeaderBytes else {
            throw FTQError.invalid("index.too-large", file: indexPath, "index is \(indexFile.size) bytes, over the \(SafetensorsHeader.maxHeaderBytes)-byte cap")
        }
        let root: JSONValue
        do { root = try StrictJSON.parse(try indexFile.read(at: 0, count: indexFile.size)) } catch let e as FTQError {
            var e2 = e.inFile(indexPath)
            if e.code == "json.duplicate-key" { e2.code = "index.duplicate-key" }
            throw e2
        }
        // D3: weight_map is an object of strings.
        guard case let .object(map)? = root["weight_map"] else {
            throw FTQError.invalid("index.bad-weight-map", file: indexPath, "\"weight_map\" is missing or not an object")
        }
        var shardOrder: [String] = []
        var tensorsByShard: [ExactName: [String]] = [:]
        var shardOf: [ExactName: String] = [:]
        for (tensor, v) in map {
            guard case let .string(shard) = v else {
                throw FTQError.invalid("index.bad-weight-map", file: indexPath, "weight_map[\"\(tensor)\"] is \(v.kindName), expected a file name")
            }
            // D4: shard names stay inside the model directory.
            try checkShardName(shard, indexPath: indexPath)
            if tensorsByShard[ExactName(shard)] == nil { shardOrder.append(shard) }
            tensorsByShard[ExactName(shard), default: []].append(tensor)
            shardOf[ExactName(tensor)] = shard
        }
        shardOrder.sort { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        guard !map.isEmpty else {
            throw FTQError.invalid("index.bad-weight-map", file: indexPath, "\"weight_map\" is empty: the index names no tensors")
        }
        if let m = root["metadata"] {
            guard case .object = m else {
                throw FTQError.invalid("index.bad-metadata", file: indexPath, "\"metadata\" is \(m.kindName), expected an object")
            }
        }
        var files: [InputFile] = []
        var fileMetadata: [[(String, String)]?] = []
        var tensors: [TensorEntry] = []
        for (fileIndex, shard) in shardOrder.enumerated() {
            let shardPath = joinPath(dir.isEmpty ? "." : dir, shard)
            let listedNames = tensorsByShard[ExactName(shard)]!
            try checkInsideDirectory(shardPath, dir: dir.isEmpty ? "." : dir, shard: shard, indexPath: indexPath)
            // D5: every named shard exists.
            if case .missing = PathKind.of(shardPath) {
                throw FTQError.invalid("index.missing-shard", file: indexPath,
                    "shard \"\(shard)\" named in the index (for \(listedNames.count) tensors, e.g. \"\(listedNames[0])\") does not exist")
            }
            let m = try SafetensorsFile.open(shardPath)
            files.append(m.files[0])
            fileMetadata.append(m.fileMetadata[0])
            let listed = Set(listedNames.map(ExactName.init))
            for t in m.tensors {
                if !listed.contains(ExactName(t.name)) {
                    // D6: a tensor in a shard that the index places elsewhere, or not at all.
                    if let other = shardOf[ExactName(t.name)] {
                        throw FTQError.invalid("index.tensor-in-two-shards", file: shardPath,
                            "tensor \"\(t.name)\" is in \(shard) but the index places it in \(other)")
                    }
                    throw FTQError.invalid("index.unlisted-tensor", file: shardPath,
                        "tensor \"\(t.name)\" is in \(shard) but not in the index (stale index?)")
                }
                var t2 = t
                t2.fileIndex = fileIndex
                tensors.append(t2)
            }
            // D7: every tensor the index lists is in its shard.
            let present = Set(m.tensors.map { ExactName($0.name) })
            if let missing = listedNames.first(where: { !present.contains(ExactName($0)) }) {
                throw FTQError.invalid("index.tensor-not-in-shard", file: shardPath,
                    "the index places tensor \"\(missing)\" in \(shard), but that shard does not hold it")
            }
        }
        var metadata: [(String, MetadataValue)] = []
        if case let .object(items)? = root["metadata"] {
            for (k, v) in items {
                metadata.append((k, .json(v)))
            }
        }
        // D8 (across shards) is the model's duplicate-name check.
        return try Model(format: .safetensors, version: nil, path: dir.isEmpty ? "." : dir, files: files,
                         metadata: metadata, tensors: tensors, fileMetadata: fileMetadata, auxiliaryFiles: [indexPath])
    }

    static func checkShardName(_ shard: String, indexPath: String) throws {
        let bytes = Array(shard.utf8)
        let parts = bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        if bytes.isEmpty || bytes.first == UInt8(ascii: "/") || bytes.contains(UInt8(ascii: "\\")) || bytes.contains(0)
            || parts.contains(where: { $0.isEmpty || Array($0) == [0x2e] || Array($0) == [0x2e, 0x2e] }) {
            throw FTQError.invalid("index.shard-outside-directory", file: indexPath,
                "shard name \"\(shard)\" is not a plain relative path inside the model directory; refusing to open it")
        }
    }

    /// Resolves symbolic links: the shard must still be inside the directory.
    static func checkInsideDirectory(_ shardPath: String, dir: String, shard: String, indexPath: String) throws {
        guard let realDir = realpath(dir, nil) else {
            throw FTQError.io("io.open", file: dir, "cannot resolve the model directory: \(systemError(errno))")
        }
        defer { free(realDir) }
        guard let realShard = realpath(shardPath, nil) else { return }  // missing: reported by the caller
        defer { free(realShard) }
        let d = String(cString: realDir), s = String(cString: realShard)
        if !s.hasBytePrefix(d.hasByteSuffix("/") ? d : d + "/") {
            throw FTQError.invalid("index.shard-outside-directory", file: indexPath,
                "shard \"\(shard)\" resolves to \(s), outside the model directory; refusing to open it")
        }
    }

    static func relabel(_ m: Model, path: String) throws -> Model {
        try Model(format: m.format, version: m.version, path: path, files: m.files, metadata: m.metadata,
                  tensors: m.tensors, fileMetadata: m.fileMetadata, auxiliaryFiles: m.auxiliaryFiles)
    }
}

/// The names in a directory (not `.` and `..`).
public func listDirectory(_ dir: String) throws -> [String] {
    guard let d = opendir(dir) else {
        throw FTQError.io(errno == ENOENT ? "io.not-found" : "io.open", file: dir, "cannot read directory: \(systemError(errno))")
    }
    defer { closedir(d) }
    var names: [String] = []
    while let ent = readdir(d) {
        let name = withUnsafePointer(to: ent.pointee.d_name) {
            $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
        }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}
