import FTQCore

/// A tensor's element type in its own format's terms.
public enum TensorType: Hashable, Sendable, CustomStringConvertible {
    case safetensors(DType)
    case ggml(GGMLType)

    /// The format's own name (`BF16`, `Q4_K`, ...).
    public var name: String {
        switch self {
        case let .safetensors(d): return d.rawValue
        case let .ggml(g): return g.name
        }
    }

    public var description: String { name }

    /// The same elements as a plain safetensors dtype, when the type is one (all safetensors
    /// types; GGUF's F32, F16, BF16, F64, I8, I16, I32, I64). nil for quantized ggml types.
    public var plainDType: DType? {
        switch self {
        case let .safetensors(d): return d
        case let .ggml(g):
            switch g.rawValue {
            case 0: return .F32
            case 1: return .F16
            case 30: return .BF16
            case 28: return .F64
            case 24: return .I8
            case 25: return .I16
            case 26: return .I32
            case 27: return .I64
            default: return nil
            }
        }
    }
}

extension GGMLType {
    /// The ggml type that stores `dtype` unchanged, if GGUF has one.
    public static func plain(_ dtype: DType) -> GGMLType? {
        switch dtype {
        case .F32: return .F32
        case .F16: return .F16
        case .BF16: return .BF16
        case .F64: return .F64
        case .I8: return .I8
        case .I16: return .I16
        case .I32: return .I32
        case .I64: return .I64
        default: return nil
        }
    }
}

/// One tensor of a model: where its bytes are and how to read them.
public struct TensorEntry: Sendable {
    public var name: String
    public var type: TensorType
    /// Row-major shape, outermost dimension first (for GGUF, `ne` reversed).
    public var shape: [Int]
    /// Index into ``Model/files``.
    public var fileIndex: Int
    /// Absolute byte offset of the data from the start of its file.
    public var offset: Int
    /// Bytes of data.
    public var nbytes: Int
    /// Number of elements (the product of `shape`).
    public var elementCount: Int

    public init(name: String, type: TensorType, shape: [Int], fileIndex: Int, offset: Int, nbytes: Int, elementCount: Int) {
        self.name = name
        self.type = type
        self.shape = shape
        self.fileIndex = fileIndex
        self.offset = offset
        self.nbytes = nbytes
        self.elementCount = elementCount
    }
}

/// The container format of a model.
public enum ModelFormat: String, Sendable {
    case safetensors
    case gguf
}

/// A metadata value: safetensors `__metadata__` values are strings; GGUF values are typed;
/// a sharded directory's index `metadata` holds JSON values.
public enum MetadataValue: Sendable, Equatable {
    case string(String)
    case gguf(GGUFValue)
    case json(JSONValue)

    /// The value as plain JSON.
    public var json: JSONValue {
        switch self {
        case let .string(s): return .string(s)
        case let .gguf(g): return g.json
        case let .json(j): return j
        }
    }
}

/// An opened model: one file, a sharded Hugging Face directory or a split GGUF set, read as
/// one. Only headers have been read; tensor data is read on demand with ``read(_:)``.
public final class Model: @unchecked Sendable {
    public let format: ModelFormat
    /// GGUF version; nil for safetensors.
    public let version: Int?
    /// What the user named (a file or a directory).
    public let path: String
    public let files: [InputFile]
    /// Metadata in file order (GGUF: the first split's key-values).
    public let metadata: [(String, MetadataValue)]
    /// Tensors in file order (by file, then by data offset for safetensors, info order for GGUF).
    public let tensors: [TensorEntry]
    /// Each safetensors file's own `__metadata__` (nil where a file has none; all nil for GGUF).
    public let fileMetadata: [[(String, String)]?]
    /// Files read besides those holding tensors (a sharded model's index).
    public let auxiliaryFiles: [String]
    private let index: [ExactName: Int]

    public init(format: ModelFormat, version: Int?, path: String, files: [InputFile],
                metadata: [(String, MetadataValue)], tensors: [TensorEntry],
                fileMetadata: [[(String, String)]?]? = nil, auxiliaryFiles: [String] = []) throws {
        self.auxiliaryFiles = auxiliaryFiles
        self.fileMetadata = fileMetadata ?? Array(repeating: nil, count: files.count)
        self.format = format
        self.version = version
        self.path = path
        self.files = files
        self.metadata = metadata
        self.tensors = tensors
        var index: [ExactName: Int] = [:]
        for (k, t) in tensors.enumerated() {
            if index.updateValue(k, forKey: ExactName(t.name)) != nil {
                throw FTQError.invalid("model.duplicate-tensor", file: path, "tensor \"\(t.name)\" appears twice")
            }
        }
        self.index = index
    }

    /// The tensor named `name`, if present.
    public func tensor(_ name: String) -> TensorEntry? { index[ExactName(name)].map { tensors[$0] } }

    /// The path of the file that holds `t`.
    public func file(of t: TensorEntry) -> InputFile { files[t.fileIndex] }

    /// Reads a tensor's bytes (bounded by that tensor's size).
    public func read(_ t: TensorEntry) throws -> [UInt8] {
        try files[t.fileIndex].read(at: t.offset, count: t.nbytes)
    }

    /// Calls `body` with successive chunks of a tensor's bytes, each at most `chunkBytes`
    /// long and a whole number of `granule` bytes (except that a tensor never splits
    /// an element). Memory use is one chunk, whatever the tensor's size.
    /// The read size used when streaming tensor data: 8 MiB.
    public static let chunkBytes = 8 << 20

    ///
    /// With `buffer` (at least `chunkBytes` long) the chunks are read into it, so that a caller
    /// streaming many tensors reuses one buffer; otherwise one is allocated for this call.
    public func forEachChunk(of t: TensorEntry, chunkBytes: Int = Model.chunkBytes, granule: Int = 8,
                             buffer: UnsafeMutableRawBufferPointer? = nil,
                             _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        let file = files[t.fileIndex]
        let step = max(granule, chunkBytes - chunkBytes % granule)
        let owned = buffer == nil
            ? LargeBuffer.allocate(byteCount: min(step, max(t.nbytes, 1))) : nil
        defer { owned.map(LargeBuffer.deallocate) }
        let buf = buffer ?? owned!
        precondition(buf.count >= min(step, t.nbytes))
        var done = 0
        while done < t.nbytes {
            let n = min(step, t.nbytes - done)
            let slice = UnsafeMutableRawBufferPointer(rebasing: buf[0..<n])
            try file.read(into: slice, at: t.offset + done)
            try body(UnsafeRawBufferPointer(slice))
            done += n
        }
    }

    /// Total bytes of tensor data (each tensor lies inside a file, so the sum of the sizes of
    /// non-overlapping tensors cannot overflow).
    public var totalBytes: Int { tensors.reduce(0) { $0 &+ $1.nbytes } }
}
