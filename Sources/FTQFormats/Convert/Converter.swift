#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import FTQCore
import FTQKernels

/// What `ftq convert` writes.
public enum OutputTarget: Sendable, Equatable {
    /// One `.safetensors` file.
    case safetensorsFile(String)
    /// A Hugging Face directory: `model.safetensors`, or shards and an index.
    case hfDirectory(String, maxShardSize: Int)
    /// One GGUF v3 file.
    case gguf(String)

    public var path: String {
        switch self {
        case let .safetensorsFile(p), let .gguf(p): return p
        case let .hfDirectory(p, _): return p
        }
    }
}

public struct ConvertOptions: Sendable {
    /// Target type for floating-point tensors (F64/F32/F16/BF16); nil keeps each tensor's type.
    public var dtype: DType?
    public var overwrite: Bool
    public var quiet: Bool
    /// With a digest, every output file and every tensor's data is hashed while it is written.
    public var digest: DigestMaker?
    /// Files written with the outputs (a manifest and checksums), made from what was written.
    public var sidecars: Sidecars?
    /// Decode quantized GGUF tensors even into a GGUF output (they always are into safetensors).
    public var dequantize: Bool
    /// Quantize every 2-D weight to this type, as `llama-quantize --pure` does (GGUF outputs).
    public var quantize: GGMLQuantizeType? = nil
    /// Receives one line for each tensor that could not take the requested type.
    public var notice: (@Sendable (String) -> Void)? = nil
    /// Threads the quantizing kernels may use (outputs do not depend on it).
    public var threads = 1
    /// When set, `quantize` measures the error of every quantized tensor while writing it.
    public var report: QuantizationReport? = nil
    /// GGUF outputs of a Llama-family Hugging Face checkpoint: llama.cpp's names, row order and
    /// metadata (formats/llama-gguf.md).
    public var llama: LlamaGGUF? = nil
    /// With `llama`: llama.cpp's pre-tokenizer name, instead of the one derived from tokenizer.json.
    public var tokenizerPre: String? = nil
    /// GGUF outputs: per-tensor types by GGUF name, over `quantize` and `dtype`
    /// (formats/llama-gguf.md, "Type overrides").
    public var typeOverrides: GGUFTypeOverrides? = nil
    /// GGUF outputs: bytes that replace a tensor's (by model tensor index; same type and size),
    /// for `merge` into a GGUF base.
    public var replacement: (@Sendable (Int) throws -> [UInt8]?)? = nil

    public init(dtype: DType? = nil, overwrite: Bool = false, quiet: Bool = false, dequantize: Bool = false,
                digest: DigestMaker? = nil, sidecars: Sidecars? = nil) {
        self.dtype = dtype
        self.overwrite = overwrite
        self.quiet = quiet
        self.dequantize = dequantize
        self.digest = digest
        self.sidecars = sidecars
    }
}

/// Files that accompany an output: beside a file output (its name plus a suffix) or inside a
/// directory output. They are written, each atomically, after the outputs are complete and
/// before the outputs are renamed into place, so no output appears without them.
public struct Sidecars: Sendable {
    /// Suffixes appended to a file output's name (`.manifest.json`, `.sha256`).
    public var fileSuffixes: [String]
    /// Names inside a directory output (`ftq-manifest.json`, `SHA256SUMS`).
    public var directoryNames: [String]
    /// The sidecars' contents from the files written (whose `name`s are relative to the
    /// sidecars' directory) and the sidecars' own names there, in the same order.
    public var make: @Sendable (_ written: [WrittenFile], _ names: [String]) throws -> [[UInt8]]

    public init(fileSuffixes: [String], directoryNames: [String],
                make: @escaping @Sendable (_ written: [WrittenFile], _ names: [String]) throws -> [[UInt8]]) {
        self.fileSuffixes = fileSuffixes
        self.directoryNames = directoryNames
        self.make = make
    }
}

/// One tensor as written.
public struct WrittenTensor: Sendable {
    public var name: String
    /// The output format's type name.
    public var dtype: String
    public var shape: [Int]
    /// Absolute offset of the data in the file.
    public var offset: Int
    public var nbytes: Int
    /// SHA-256 of the data bytes, when hashing.
    public var sha256: String?
}

/// One file the converter wrote.
public struct WrittenFile: Sendable {
    /// The path as written (the output path, or the output directory joined with `name`).
    public var path: String
    /// The name relative to the directory that holds the sidecars.
    public var name: String
    public var bytes: Int
    /// Model tensors in file order; empty for an index file.
    public var tensors: [WrittenTensor]
    /// SHA-256 of the whole file, when hashing.
    public var sha256: String?
    /// SHA-256 of the bytes outside tensor data (header, metadata, padding) in file order, for
    /// model files, when hashing.
    public var otherSHA256: String? = nil
    /// True for a file that was already in the output directory and is kept (config.json,
    /// tokenizer files): not written, but part of the artifact its manifest describes.
    public var kept = false
}

/// Format conversion with memory bounded by one chunk (8 MiB), whatever the model's size
/// (formats/cli.md, "convert").
public struct Converter {
    public let model: Model
    public let options: ConvertOptions
    /// The default `--max-shard-size`: 5GB, Hugging Face's default.
    public static let defaultMaxShardSize = 5_000_000_000

    public init(model: Model, options: ConvertOptions) {
        self.model = model
        self.options = options
    }

    /// The type each tensor is written as, when it is written as a plain dtype: a quantized
    /// tensor is decoded to float32, or to --dtype.
    func targetDType(_ t: TensorEntry) throws -> DType {
        guard let d = t.type.plainDType else {
            if case let .ggml(g) = t.type, GGMLDequantizer.kernel(for: g) != nil { return options.dtype ?? .F32 }
            throw FTQError.invalid("convert.quantized-tensor", file: model.file(of: t).path,
                "tensor \"\(t.name)\" is \(t.type.name), which ftq cannot dequantize yet")
        }
        if let want = options.dtype, d.isConvertibleFloat { return want }
        return d
    }

    /// Writes the model to `target` and returns the files written (sidecars not included).
    public func run(to target: OutputTarget) throws -> [WrittenFile] {
        try refuseInputAsOutput(target.path)
        switch target {
        case let .safetensorsFile(path):
            try refuseExistingSidecars(of: path)
            let meta = sourceSafetensorsMetadata()
            return try commitWithSidecars(try writeSafetensors(model.tensors, metadata: meta, to: path))
        case let .gguf(path):
            try refuseExistingSidecars(of: path)
            return try commitWithSidecars(try writeGGUF(to: path))
        case let .hfDirectory(dir, maxShardSize):
            return try writeDirectory(dir, maxShardSize: maxShardSize)
        }
    }

    /// A file output's sidecars exist: refused, like the output itself, without --force.
    func refuseExistingSidecars(of path: String) throws {
        for suffix in options.sidecars?.fileSuffixes ?? [] {
            let p = path + suffix
            switch PathKind.of(p) {
            case .missing: continue
            case .directory: throw FTQError.usage("output.is-directory", "\(p) is a directory, expected a file name")
            default:
                if !options.overwrite { throw FTQError.usage("output.exists", "\(p) already exists (use --force to replace it)") }
            }
        }
    }

    /// Writes a finished single-file output's sidecars, then renames the output into place.
    func commitWithSidecars(_ staged: (OutputFile, WrittenFile)) throws -> [WrittenFile] {
        let (out, written) = staged
        var files: [OutputFile] = []
        do {
            if let sidecars = options.sidecars {
                let contents = try sidecars.make([written], sidecars.fileSuffixes.map { written.name + $0 })
                for (suffix, bytes) in zip(sidecars.fileSuffixes, contents) {
                    let f = try OutputFile(written.path + suffix, overwrite: true)
                    files.append(f)
                    try f.write(bytes)
                    try f.finish()
                }
            }
            // Everything is complete under temporary names: rename the sidecars, the output last.
            for f in files { try f.commit() }
            try out.commit()
        } catch {
            for f in files { f.abort() }
            out.abort()
            throw error
        }
        return [written]
    }

    /// safetensors `__metadata__` for the output: the (first) source file's, exactly as it
    /// was (absent, empty or not), or `format: pt` for a GGUF source.
    func sourceSafetensorsMetadata() -> [(String, String)]? {
        if model.format == .gguf { return [("format", "pt")] }
        return model.fileMetadata.first ?? nil
    }

    /// Refuses an output that is one of the inputs, or a directory that holds one.
    func refuseInputAsOutput(_ out: String) throws {
        let inputs = Set(model.files.map(\.identity))
        if let id = FileIdentity.of(out) {
            if inputs.contains(id) {
                throw FTQError.usage("output.is-input", "output \(out) is an input file; choose another output path")
            }
            if case .directory = PathKind.of(out), let real = realPath(out) {
                for f in model.files {
                    if let rf = realPath(f.path), rf.hasBytePrefix(real.hasByteSuffix("/") ? real : real + "/") {
                        throw FTQError.usage("output.is-input", "output directory \(out) holds the input \(f.path); choose another output path")
                    }
                }
            }
        }
    }

    // MARK: safetensors

    /// Writes a safetensors file under its temporary name and finishes it (not yet renamed).
    func writeSafetensors(_ tensors: [TensorEntry], metadata: [(String, String)]?, to path: String,
                          name: String? = nil, progress: Progress? = nil) throws -> (OutputFile, WrittenFile) {
        let specs = try tensors.map { t in (name: t.name, dtype: try targetDType(t), shape: t.shape) }
        let buffers = ChunkBuffers()
        return try streamSafetensors(specs, metadata: metadata, to: path, name: name, progress: progress, label: "convert") { i, item, emit in
            try copyConverted(tensors[i], as: item.dtype, to: emit, buffers: buffers)
        }
    }

    /// Writes a safetensors file of `specs` under its temporary name and finishes it (not yet
    /// renamed): the header, then each tensor in the file's order, whose bytes `produce` passes
    /// to its `emit` (given the tensor's index in `specs` and its layout item). Every byte is
    /// hashed while written when hashing; `afterTensor` runs after each tensor.
    func streamSafetensors(_ specs: [(name: String, dtype: DType, shape: [Int])], metadata: [(String, String)]?, to path: String,
                           name: String?, progress: Progress?, label: String,
                           produce: (_ index: Int, _ item: SafetensorsLayout.Item, _ emit: (UnsafeRawBufferPointer) throws -> Void) throws -> Void,
                           afterTensor: ((Int) -> Void)? = nil) throws -> (OutputFile, WrittenFile) {
        let layout = try naming(path) { try SafetensorsLayout(tensors: specs, metadata: metadata) }
        let out = try OutputFile(path, overwrite: options.overwrite)
        let hashes = options.digest.map { HashPipeline($0) }
        var written: [WrittenTensor] = []
        do {
            let prog = progress ?? Progress(label: label, totalBytes: layout.fileSize, quiet: options.quiet)
            try out.write(layout.headerBytes)
            hashes?.feed(layout.headerBytes, tensor: false)
            var offset = layout.headerBytes.count
            for item in layout.items {
                hashes?.beginTensor()
                var produced = 0
                try produce(item.source, item) { b in
                    try out.write(b)
                    hashes?.feed(b, tensor: true)
                    prog.advance(b.count)
                    produced += b.count
                }
                hashes?.endTensor()
                guard produced == item.nbytes else {
                    throw FTQError.invalid("internal.size", file: path, "tensor \"\(item.name)\": \(produced) bytes produced for \(item.nbytes)")
                }
                written.append(WrittenTensor(name: item.name, dtype: item.dtype.rawValue, shape: item.shape,
                                             offset: offset, nbytes: item.nbytes, sha256: nil))
                offset += item.nbytes
                afterTensor?(item.source)
            }
            if progress == nil { prog.finish() }
            try out.finish()
        } catch {
            out.abort()
            throw error
        }
        return (out, Self.written(path: path, name: name ?? splitPath(path).base, bytes: layout.fileSize, tensors: written, hashes: hashes))
    }

    /// Streams a plain tensor's data converted to `dtype` (unchanged when it already is).
    func copyConverted(_ t: TensorEntry, as dtype: DType, to emit: (UnsafeRawBufferPointer) throws -> Void, buffers: ChunkBuffers) throws {
        if t.type.plainDType == nil {
            // Quantized blocks, decoded to float32 a slice at a time, then converted.
            return try forEachFloatSlice(t, buffers: buffers) { n in
                if dtype == .F32 { return try emit(UnsafeRawBufferPointer(rebasing: buffers.floats[0..<(n * 4)])) }
                DTypeConversion.convert(from: .F32, to: dtype, count: n, src: UnsafeRawBufferPointer(buffers.floats), dst: buffers.converted)
                try emit(UnsafeRawBufferPointer(rebasing: buffers.converted[0..<(n * dtype.bits / 8)]))
            }
        }
        guard let src = t.type.plainDType, src != dtype else { return try copyData(t, to: emit, buffers: buffers) }
        let inSize = src.bits / 8, outSize = dtype.bits / 8
        try model.forEachChunk(of: t, granule: inSize, buffer: buffers.read) { chunk in
            let n = chunk.count / inSize
            DTypeConversion.convert(from: src, to: dtype, count: n, src: chunk, dst: buffers.converted)
            try emit(UnsafeRawBufferPointer(rebasing: buffers.converted[0..<(n * outSize)]))
        }
    }

    // MARK: GGUF

    /// Writes a GGUF file under its temporary name and finishes it (not yet renamed).
    func writeGGUF(to path: String) throws -> (OutputFile, WrittenFile) {
        // Each tensor's output type: quantized GGUF tensors are copied unchanged; plain ones
        // take --dtype where it applies.
        var specs: [(name: String, type: GGMLType, shape: [Int])] = []
        var plainTargets: [DType?] = []
        var quantTargets: [GGMLQuantizeType?] = []
        let entries = try ggufEntries()
        for e in entries {
            quantTargets.append(nil)
            guard let k = e.source else {
                specs.append((e.name, GGMLType.plain(.F32)!, e.shape))
                plainTargets.append(.F32)
                continue
            }
            let t = e.logical ?? model.tensors[k]
            if options.llama != nil, t.shape.count < 2 {
                // llama.cpp wants norms and other 1-D tensors in F32.
                specs.append((e.name, GGMLType.plain(.F32)!, e.shape))
                plainTargets.append(.F32)
                continue
            }
            if let plan = try ggufPlan(e, t) {
                switch plan {
                case let .quantized(type):
                    specs.append((e.name, type.ggmlType, e.shape))
                    plainTargets.append(nil)
                    quantTargets[quantTargets.count - 1] = type
                case let .plain(d):
                    specs.append((e.name, GGMLType.plain(d)!, e.shape))
                    plainTargets.append(d)
                }
                continue
            }
            if case let .ggml(g) = t.type, t.type.plainDType == nil, !options.dequantize {
                specs.append((e.name, g, e.shape))
                plainTargets.append(nil)
                continue
            }
            let d = try targetDType(t)
            guard let g = GGMLType.plain(d) else {
                throw FTQError.invalid("convert.unsupported-dtype", file: model.file(of: t).path,
                    "tensor \"\(t.name)\" is \(d.rawValue), which GGUF cannot store (it holds F32, F16, BF16, F64, I8, I16, I32, I64 and ggml's quantized types)")
            }
            specs.append((e.name, g, e.shape))
            plainTargets.append(d)
        }
        let allPlain = plainTargets.allSatisfy { $0 != nil } && options.quantize == nil
        var metadata: [(String, GGUFValue)] = []
        if model.format == .gguf {
            for (k, v) in model.metadata where !k.hasBytePrefix("split.") {
                guard case var .gguf(g) = v else { continue }
                // general.file_type names the model's main type; keep it true after --dtype.
                if k == "general.file_type", allPlain, let d = options.dtype ?? (options.dequantize ? .F32 : nil), case .u32 = g {
                    g = .u32(d == .F32 ? 0 : d == .F16 ? 1 : 32)
                }
                if k == "general.file_type", let q = options.quantize, case .u32 = g { g = .u32(q.fileType) }
                metadata.append((k, g))
            }
        }
        if let llama = options.llama {
            metadata = llama.metadata(fileType: llamaFileType(specs: specs), quantized: options.quantize != nil || quantTargets.contains { $0 != nil })
            metadata += try LlamaTokenizer.metadata(directory: model.path, vocabSize: llama.vocabSize, pre: options.tokenizerPre, notice: options.notice)
        }
        let layout = try naming(path) { try GGUFLayout(metadata: metadata, tensors: specs) }
        let out = try OutputFile(path, overwrite: options.overwrite)
        let hashes = options.digest.map { HashPipeline($0) }
        var written: [WrittenTensor] = []
        do {
            let prog = Progress(label: "convert", totalBytes: layout.fileSize, quiet: options.quiet)
            try out.write(layout.headerBytes)
            hashes?.feed(layout.headerBytes, tensor: false)
            let buffers = ChunkBuffers()
            /// A tensor produced whole in memory, checked against its slot in the layout.
            func writeWhole(_ bytes: [UInt8], _ item: GGUFLayout.Item) throws {
                guard bytes.count == item.nbytes else {
                    throw FTQError.invalid("internal.size", file: path, "tensor \"\(item.name)\": \(bytes.count) bytes produced for \(item.nbytes)")
                }
                hashes?.beginTensor()
                try out.write(bytes)
                hashes?.feed(bytes, tensor: true)
                hashes?.endTensor()
                prog.advance(bytes.count)
            }
            for (i, item) in layout.items.enumerated() {
                let e = entries[i]
                if e.source == nil || e.heads != nil {
                    // Computed or row-permuted tensors: produced whole.
                    try writeWhole(try entryBytes(e, plain: plainTargets[i], quantized: quantTargets[i]), item)
                } else if e.bnb != nil {
                    try writeDequantized(e, plain: plainTargets[i], quantized: quantTargets[i], out: out, progress: prog, buffers: buffers, hashes: hashes)
                } else if let q = quantTargets[i], let k = e.source {
                    try quantizeTensor(model.tensors[k], to: q, out: out, progress: prog, buffers: buffers, hashes: hashes)
                } else if let k = e.source, let bytes = try options.replacement?(k) {
                    try writeWhole(bytes, item)
                } else if let k = e.source {
                    try copy(model.tensors[k], as: plainTargets[i], to: out, progress: prog, buffers: buffers, hashes: hashes)
                }
                written.append(WrittenTensor(name: item.name, dtype: item.type.name, shape: item.shape,
                                             offset: layout.headerBytes.count + item.offset, nbytes: item.nbytes, sha256: nil))
                if item.padding > 0 {
                    let zeros = [UInt8](repeating: 0, count: item.padding)
                    try out.write(zeros)
                    hashes?.feed(zeros, tensor: false)
                }
            }
            prog.finish()
            try out.finish()
        } catch {
            out.abort()
            throw error
        }
        return (out, Self.written(path: path, name: splitPath(path).base, bytes: layout.fileSize, tensors: written, hashes: hashes))
    }

    /// A written file's record, with the digests of its hash pipeline when hashing.
    static func written(path: String, name: String, bytes: Int, tensors: [WrittenTensor], hashes: HashPipeline?) -> WrittenFile {
        guard let digests = hashes?.finish() else {
            return WrittenFile(path: path, name: name, bytes: bytes, tensors: tensors, sha256: nil)
        }
        var t = tensors
        for k in t.indices { t[k].sha256 = digests.tensors[k] }
        return WrittenFile(path: path, name: name, bytes: bytes, tensors: t, sha256: digests.file, otherSHA256: digests.other)
    }

    // MARK: Hugging Face directories

    /// Splits tensors, in source order, into shards of at most `maxShardSize` bytes of
    /// tensor data, as huggingface_hub's `split_state_dict_into_shards_factory` does: a tensor
    /// larger than the limit becomes a shard of its own at once (placed before the shard being
    /// filled), and a tensor that would tip the current shard over the limit starts a new one.
    /// An empty model is one empty shard.
    public static func planShards(_ sizes: [Int], maxShardSize: Int) -> [[Int]] {
        var shards: [[Int]] = []
        var current: [Int] = []
        var currentSize = 0
        for (k, s) in sizes.enumerated() {
            if s > maxShardSize {
                shards.append([k])
                continue
            }
            if currentSize + s > maxShardSize {
                shards.append(current)
                current = []
                currentSize = 0
            }
            current.append(k)
            currentSize += s
        }
        if !current.isEmpty || shards.isEmpty { shards.append(current) }
        return shards
    }

    func writeDirectory(_ dir: String, maxShardSize: Int) throws -> [WrittenFile] {
        var outSizes: [Int] = []
        for t in model.tensors {
            let d = try targetDType(t)
            guard let n = d.byteCount(elements: t.elementCount) else {
                throw FTQError.invalid("convert.size-overflow", "tensor \"\(t.name)\": \(t.elementCount) elements of \(d.rawValue) overflow a 64-bit size")
            }
            outSizes.append(n)
        }
        var shardOptions = options
        shardOptions.overwrite = true
        let meta = sourceSafetensorsMetadata() ?? [("format", "pt")]
        return try writeDirectory(dir, maxShardSize: maxShardSize, names: model.tensors.map(\.name), sizes: outSizes,
                                  parameters: model.tensors.reduce(0) { $0 + $1.elementCount }) { indices, staged, name, prog in
            try Converter(model: model, options: shardOptions)
                .writeSafetensors(indices.map { model.tensors[$0] }, metadata: meta, to: staged, name: name, progress: prog)
        }
    }

    /// Writes a Hugging Face directory of safetensors shards: tensors `names` with data sizes
    /// `sizes` are split into shards as huggingface_hub splits them, each shard written by
    /// `writeShard` (the indices of its tensors, its staged path, its name) in a staging
    /// directory, with the index, `extraFiles` (written as given) and the sidecars, then moved
    /// into place.
    func writeDirectory(_ dir: String, maxShardSize: Int, names tensorNames: [String], sizes outSizes: [Int], parameters: Int,
                        extraFiles: [(name: String, bytes: [UInt8])] = [],
                        writeShard: (_ indices: [Int], _ staged: String, _ name: String, _ progress: Progress) throws -> (OutputFile, WrittenFile)) throws -> [WrittenFile] {
        var total = 0
        for n in outSizes { total = try Checked.add(total, n, "convert.size-overflow", "total size") }
        let shards = Self.planShards(outSizes, maxShardSize: maxShardSize)
        let names: [String] = shards.count == 1 ? [ShardedModel.singleName] :
            (1...shards.count).map { GGUFSplit.partNameSafetensors(part: $0, count: shards.count) }

        // Stage everything in a temporary sibling directory, then move it into place.
        let existing = PathKind.of(dir)
        switch existing {
        case .missing: break
        case .directory:
            let entries = try listDirectory(dir)
            if !entries.isEmpty && !options.overwrite {
                throw FTQError.usage("output.exists", "\(dir) already exists and is not empty (use --force to replace the model files in it)")
            }
        case let .inaccessible(reason):
            throw FTQError.io("io.open", file: dir, "cannot check the output path: \(reason)")
        default:
            throw FTQError.usage("output.exists", "\(dir) exists and is not a directory")
        }
        let (parent, base) = splitPath(dir.hasByteSuffix("/") ? String(dir.dropLast()) : dir)
        let stage = joinPath(parent, ".\(base).\(getpid()).ftq-tmp")
        guard mkdir(stage, 0o755) == 0 else {
            throw FTQError.io("io.create", file: stage, "cannot create a staging directory: \(systemError(errno))")
        }
        TempFileRegistry.shared.addDirectory(stage)
        defer { removeTree(stage); TempFileRegistry.shared.removeDirectory(stage) }

        let prog = Progress(label: "convert", totalBytes: total, quiet: options.quiet)
        var written: [WrittenFile] = []
        var weightMap: [(String, String)] = []
        for (k, shard) in shards.enumerated() {
            let staged = joinPath(stage, names[k])
            let (out, w) = try writeShard(shard, staged, names[k], prog)
            try out.commit()
            var w2 = w
            w2.path = joinPath(dir, names[k])
            written.append(w2)
            for i in shard { weightMap.append((tensorNames[i], names[k])) }
        }
        prog.finish()
        var files = names
        for (name, bytes) in extraFiles {
            let out = try OutputFile(joinPath(stage, name), overwrite: true, digest: options.digest)
            try out.write(bytes)
            let sha = try out.finish()
            try out.commit()
            written.append(WrittenFile(path: joinPath(dir, name), name: name, bytes: bytes.count, tensors: [], sha256: sha))
            files.append(name)
        }
        if shards.count > 1 {
            weightMap.sort { $0.0.unicodeScalars.lexicographicallyPrecedes($1.0.unicodeScalars) }
            let index = JSONValue.object([
                ("metadata", .object([("total_parameters", .int(parameters)), ("total_size", .int(total))])),
                ("weight_map", .object(weightMap.map { ($0.0, .string($0.1)) })),
            ])
            let text = JSONText.serialize(index, indent: 2, asciiOnly: true) + "\n"
            let out = try OutputFile(joinPath(stage, ShardedModel.indexName), overwrite: true, digest: options.digest)
            try out.write(Array(text.utf8))
            let sha = try out.finish()
            try out.commit()
            written.append(WrittenFile(path: joinPath(dir, ShardedModel.indexName), name: ShardedModel.indexName,
                                       bytes: text.utf8.count, tensors: [], sha256: sha))
            files.append(ShardedModel.indexName)
        }
        if let sidecars = options.sidecars {
            // Files already in the directory that stay (not model files, which are replaced)
            // belong to the artifact too: the manifest lists them.
            if existing == .directory, let maker = options.digest {
                let ours = Set(files.map(ExactName.init) + sidecars.directoryNames.map(ExactName.init))
                for name in try listDirectory(dir).sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) })
                where !ours.contains(ExactName(name)) && !Self.replaced(name) && !name.hasByteSuffix(".ftq-tmp")
                    && PathKind.of(joinPath(dir, name)) == .regularFile {
                    let f = try InputFile(joinPath(dir, name))
                    let (sha, size) = try Self.digest(of: f, maker)
                    written.append(WrittenFile(path: joinPath(dir, name), name: name, bytes: size, tensors: [], sha256: sha, kept: true))
                }
            }
            for (name, bytes) in zip(sidecars.directoryNames, try sidecars.make(written, sidecars.directoryNames)) {
                let out = try OutputFile(joinPath(stage, name), overwrite: true)
                try out.write(bytes)
                try out.commit()
                files.append(name)
            }
        }
        try install(stage: stage, into: dir, files: files, existed: existing == .directory)
        return written
    }

    /// Moves the staged files into `dir`; the index last, then removes model files of an
    /// earlier run that the new set does not include.
    func install(stage: String, into dir: String, files: [String], existed: Bool) throws {
        if !existed {
            if rename(stage, dir) == 0 { return }
            guard mkdir(dir, 0o755) == 0 || errno == EEXIST else {
                throw FTQError.io("io.create", file: dir, "cannot create the output directory: \(systemError(errno))")
            }
        }
        let keep = Set(files)
        for name in files {
            if rename(joinPath(stage, name), joinPath(dir, name)) != 0 {
                throw FTQError.io("io.rename", file: joinPath(dir, name), "cannot move the finished file into place: \(systemError(errno))")
            }
        }
        for name in try listDirectory(dir) where !keep.contains(name) && Self.replaced(name) {
            unlink(joinPath(dir, name))
        }
    }

    /// Model files of an earlier run, which a new directory output replaces.
    static func replaced(_ name: String) -> Bool {
        name.hasByteSuffix(".safetensors") || name == ShardedModel.indexName
    }

    /// The digest and size of a whole file, read in 4 MiB pieces.
    static func digest(of f: InputFile, _ maker: DigestMaker) throws -> (String, Int) {
        let d = maker()
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 << 20, alignment: 64)
        defer { buf.deallocate() }
        var off = 0
        while off < f.size {
            let n = min(buf.count, f.size - off)
            let slice = UnsafeMutableRawBufferPointer(rebasing: buf[0..<n])
            try f.read(into: slice, at: off)
            d.update(UnsafeRawBufferPointer(slice))
            off += n
        }
        return (d.finalizeHex(), f.size)
    }

    enum QuantizePlan { case quantized(GGMLQuantizeType), plain(DType) }

    /// What `--type` does to a tensor (formats/cli.md, "quantize"): a 2-D floating-point or
    /// quantized weight whose rows fill whole blocks takes the type; rows that do not fill
    /// 256-element blocks fall back as llama-quantize does (Q4_K -> Q5_0, Q6_K -> Q8_0); rows
    /// that fill no 32-element blocks are kept as F16; every fallback is reported. 1-D and
    /// scalar floating-point tensors become F32; other tensors are left to the usual rules (nil).
    func quantizePlan(_ t: TensorEntry, _ q: GGMLQuantizeType) throws -> QuantizePlan? {
        let isFloat = t.type.plainDType?.isConvertibleFloat ?? false
        var decodable = false
        if case let .ggml(g) = t.type, t.type.plainDType == nil { decodable = GGMLDequantizer.kernel(for: g) != nil }
        guard isFloat || decodable else { return nil }
        if t.shape.count < 2 { return .plain(.F32) }
        guard t.shape.count == 2 else { return nil }
        let row = t.shape[1]
        if row % q.blockElements == 0 { return .quantized(q) }
        if let fb = q.rowFallback, row % fb.blockElements == 0 {
            options.notice?("tensor \"\(t.name)\" \(t.shape): rows of \(row) are not a multiple of \(q.blockElements), \(fb.rawValue) instead of \(q.rawValue)")
            return .quantized(fb)
        }
        options.notice?("tensor \"\(t.name)\" \(t.shape): rows of \(row) are not a multiple of \(GGMLLegacyQuant.blockElements), kept as F16")
        return .plain(.F16)
    }

    /// Streams a floating-point or quantized tensor into `q`'s blocks: whole blocks at a time
    /// (at most 1 MiB of float32) are widened or decoded to float32, quantized and written.
    func quantizeTensor(_ t: TensorEntry, to q: GGMLQuantizeType, out: OutputFile, progress: Progress,
                        buffers: ChunkBuffers, hashes: HashPipeline?) throws {
        hashes?.beginTensor()
        defer { hashes?.endTensor() }
        var errors = ErrorStats()
        let decoder = options.report == nil ? nil : GGMLDequantizer.kernel(for: q.ggmlType)
        let decoded = decoder == nil ? nil : UnsafeMutableBufferPointer<Float>.allocate(capacity: max(q.blockElements, 1 << 18))
        defer { decoded?.deallocate() }
        try forEachFloatGroup(t, group: q.blockElements, buffers: buffers) { x, _ in
            let bytes = x.count / q.blockElements * q.blockBytes
            let job = BlockJob(type: q, x: x, out: UnsafeMutableRawBufferPointer(rebasing: buffers.converted[0..<bytes]),
                               parts: min(max(1, options.threads), max(1, x.count / (64 * 1024))))
            if job.parts == 1 { job.run(0) } else { DispatchQueue.concurrentPerform(iterations: job.parts) { job.run($0) } }
            if let decoder, let y = decoded {
                // What the blocks decode to, against the source values.
                let ys = UnsafeMutableBufferPointer(rebasing: y[0..<x.count])
                decoder(UnsafeRawBufferPointer(rebasing: buffers.converted[0..<bytes]), ys)
                errors.add(x, UnsafeBufferPointer(ys))
            }
            let b = UnsafeRawBufferPointer(rebasing: buffers.converted[0..<bytes])
            try out.write(b)
            hashes?.feed(b, tensor: true)
            progress.advance(bytes)
        }
        options.report?.add(t, type: q.rawValue, stats: errors)
    }

    /// Streams tensor `t` as float32 in whole groups of `group` values, at most 1 MiB of floats
    /// (or one group) per call. Only the last call may end with a partial group, and then its
    /// `isEnd` is true (a last call of whole groups may say false). Slices that hold whole
    /// groups are passed as they are decoded, without a copy.
    func forEachFloatGroup(_ t: TensorEntry, group: Int, buffers: ChunkBuffers,
                           _ body: (UnsafeBufferPointer<Float>, _ isEnd: Bool) throws -> Void) throws {
        let capacity = max(group, (1 << 18) / group * group)
        let acc = UnsafeMutableBufferPointer<Float>.allocate(capacity: capacity)
        defer { acc.deallocate() }
        var filled = 0
        var calls = 0
        let floats = buffers.floats.bindMemory(to: Float.self)
        try forEachFloatSlice(t, buffers: buffers) { n in
            var at = 0
            if filled == 0 && n >= group {
                at = n / group * group
                try body(UnsafeBufferPointer(rebasing: floats[0..<at]), false)
                calls += 1
            }
            while at < n {
                if filled == capacity {
                    try body(UnsafeBufferPointer(acc), false)
                    calls += 1
                    filled = 0
                }
                let m = min(n - at, capacity - filled)
                (acc.baseAddress! + filled).update(from: floats.baseAddress! + at, count: m)
                filled += m
                at += m
            }
        }
        if filled > 0 || calls == 0 { try body(UnsafeBufferPointer(rebasing: acc[0..<filled]), true) }
    }

    /// Streams a floating-point or quantized tensor as float32 through `buffers.floats`, a slice
    /// of at most 1 MiB at a time (whole 32-element groups, or whole blocks), calling `body`
    /// with the number of floats in each slice.
    func forEachFloatSlice(_ t: TensorEntry, buffers: ChunkBuffers, _ body: (Int) throws -> Void) throws {
        let floats = buffers.floats.bindMemory(to: Float.self)
        if let src = t.type.plainDType {
            let inSize = src.bits / 8
            let slice = floats.count - floats.count % 32
            try model.forEachChunk(of: t, granule: 32 * inSize, buffer: buffers.read) { chunk in
                var at = 0
                let count = chunk.count / inSize
                while at < count {
                    let n = min(slice, count - at)
                    DTypeConversion.convert(from: src, to: .F32, count: n,
                                            src: UnsafeRawBufferPointer(rebasing: chunk[(at * inSize)...]), dst: buffers.floats)
                    try body(n)
                    at += n
                }
            }
        } else if case let .ggml(g) = t.type, let kernel = GGMLDequantizer.kernel(for: g) {
            let blocksPerSlice = max(1, floats.count / g.blockSize)
            try model.forEachChunk(of: t, granule: g.typeSize, buffer: buffers.read) { chunk in
                var at = 0
                while at < chunk.count {
                    let blocks = min(blocksPerSlice, (chunk.count - at) / g.typeSize)
                    let n = blocks * g.blockSize
                    kernel(UnsafeRawBufferPointer(rebasing: chunk[at..<(at + blocks * g.typeSize)]),
                           UnsafeMutableBufferPointer(rebasing: floats[0..<n]))
                    try body(n)
                    at += blocks * g.typeSize
                }
            }
        } else {
            throw FTQError.invalid("convert.quantized-tensor", file: model.file(of: t).path,
                "tensor \"\(t.name)\" is \(t.type.name), which ftq cannot dequantize yet")
        }
    }

    /// Streams a quantized tensor: blocks are decoded to float32 a slice at a time (at most
    /// 1 MiB of floats), converted to `dtype` and written.
    func dequantize(_ t: TensorEntry, as dtype: DType, to out: OutputFile, progress: Progress,
                    buffers: ChunkBuffers, hashes: HashPipeline?) throws {
        let outSize = dtype.bits / 8
        try forEachFloatSlice(t, buffers: buffers) { n in
            let bytes: UnsafeRawBufferPointer
            if dtype == .F32 {
                bytes = UnsafeRawBufferPointer(rebasing: buffers.floats[0..<(n * 4)])
            } else {
                DTypeConversion.convert(from: .F32, to: dtype, count: n, src: UnsafeRawBufferPointer(buffers.floats), dst: buffers.converted)
                bytes = UnsafeRawBufferPointer(rebasing: buffers.converted[0..<(n * outSize)])
            }
            try out.write(bytes)
            hashes?.feed(bytes, tensor: true)
            progress.advance(bytes.count)
        }
    }

    /// Streams a tensor's data unchanged, or decoded to float32 when it is ggml-quantized.
    func copyData(_ t: TensorEntry, to emit: (UnsafeRawBufferPointer) throws -> Void, buffers: ChunkBuffers) throws {
        if t.type.plainDType != nil {
            try model.forEachChunk(of: t, buffer: buffers.read, emit)
        } else {
            try forEachFloatSlice(t, buffers: buffers) { n in
                try emit(UnsafeRawBufferPointer(rebasing: buffers.floats[0..<(n * 4)]))
            }
        }
    }

    /// Runs `body`, naming `output` in its errors: the output cannot be written as asked.
    func naming<T>(_ output: String, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let e as FTQError { throw e.inFile(output) }
    }

    // MARK: data

    /// Streams one tensor's data to `out`, converting floats to `dtype` on the way (nil: the
    /// bytes unchanged), through the two buffers of `buffers`, and feeds it to `hashes`.
    func copy(_ t: TensorEntry, as dtype: DType?, to out: OutputFile, progress: Progress, buffers: ChunkBuffers,
              hashes: HashPipeline?) throws {
        hashes?.beginTensor()
        defer { hashes?.endTensor() }
        if t.type.plainDType == nil, let dtype {
            try dequantize(t, as: dtype, to: out, progress: progress, buffers: buffers, hashes: hashes)
            return
        }
        guard let src = t.type.plainDType, let dtype, src != dtype else {
            try model.forEachChunk(of: t, buffer: buffers.read) { chunk in
                try out.write(chunk)
                hashes?.feed(chunk, tensor: true)
                progress.advance(chunk.count)
            }
            return
        }
        let inSize = src.bits / 8, outSize = dtype.bits / 8
        let dst = buffers.converted
        try model.forEachChunk(of: t, granule: inSize, buffer: buffers.read) { chunk in
            let n = chunk.count / inSize
            DTypeConversion.convert(from: src, to: dtype, count: n, src: chunk, dst: dst)
            let converted = UnsafeRawBufferPointer(rebasing: dst[0..<n * outSize])
            try out.write(converted)
            hashes?.feed(converted, tensor: true)
            progress.advance(n * outSize)
        }
    }
}

extension GGUFSplit {
    /// `model-00001-of-00003.safetensors`.
    public static func partNameSafetensors(part: Int, count: Int) -> String {
        String(partName(prefix: "model", part: part, count: count).dropLast(5)) + ".safetensors"
    }
}

/// The two buffers a conversion streams through, allocated once per output file: the read
/// chunk (8 MiB) and its converted copy (up to 16 MiB, when F16/BF16 widens to F32).
/// Uninitialised: every byte used is written first.
final class ChunkBuffers {
    let read = LargeBuffer.allocate(byteCount: Model.chunkBytes)
    let converted = LargeBuffer.allocate(byteCount: Model.chunkBytes * 2)
    /// Decoded blocks of a quantized tensor, a slice at a time (1 MiB of float32).
    let floats = LargeBuffer.allocate(byteCount: 1 << 20)
    deinit {
        LargeBuffer.deallocate(read)
        LargeBuffer.deallocate(converted)
        LargeBuffer.deallocate(floats)
    }
}

/// The canonical absolute path, or nil.
func realPath(_ p: String) -> String? {
    guard let r = realpath(p, nil) else { return nil }
    defer { free(r) }
    return String(cString: r)
}

/// Removes a directory and the plain files in it (ftq's own staging directories only).
func removeTree(_ dir: String) {
    if let names = try? listDirectory(dir) {
        for n in names { unlink(joinPath(dir, n)) }
    }
    rmdir(dir)
}

/// Whole blocks of a ggml type split into `parts` ranges, each quantized on its own thread into
/// its own bytes of `out`.
struct BlockJob: @unchecked Sendable {
    let type: GGMLQuantizeType
    let x: UnsafeBufferPointer<Float>
    let out: UnsafeMutableRawBufferPointer
    let parts: Int

    func run(_ p: Int) {
        let blocks = x.count / type.blockElements
        let per = (blocks + parts - 1) / parts
        let b0 = p * per, b1 = min(blocks, b0 + per)
        guard b0 < b1 else { return }
        type.quantize(UnsafeBufferPointer(rebasing: x[(b0 * type.blockElements)..<(b1 * type.blockElements)]),
                      into: UnsafeMutableRawBufferPointer(rebasing: out[(b0 * type.blockBytes)..<(b1 * type.blockBytes)]))
    }
}
