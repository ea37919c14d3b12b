import FTQCore

/// The byte layout of a GGUF v3 file ftq is about to write (formats/gguf.md, "Writing").
///
/// Laid out as gguf-py's `GGUFWriter` does: header; key-values in the given order; tensor
/// infos in the given order with `ne` = shape reversed and offsets equal to the running sum
/// of sizes padded to the alignment; zero padding to the alignment; each tensor's data
/// followed by zero padding to the alignment.
public struct GGUFLayout: Sendable {
    public struct Item: Sendable {
        public var name: String
        public var type: GGMLType
        /// Row-major shape.
        public var shape: [Int]
        public var nbytes: Int
        /// Offset relative to the data section.
        public var offset: Int
        /// Zero bytes written after the data.
        public var padding: Int
    }

    public let items: [Item]
    public let alignment: Int
    /// Header, key-values, tensor infos and the padding before the data section.
    public let headerBytes: [UInt8]
    public let fileSize: Int

    /// ggml cannot load tensor names longer than this.
    public static let maxNameBytes = Limits.ggufWrittenNameBytes

    public init(metadata: [(String, GGUFValue)], tensors: [(name: String, type: GGMLType, shape: [Int])]) throws {
        var alignment = GGUFReader.defaultAlignment
        var keys = Set<ExactName>()
        for (k, v) in metadata {
            guard !k.isEmpty, keys.insert(ExactName(k)).inserted else {
                throw FTQError.invalid("gguf.duplicate-key", "cannot write metadata key \"\(k)\" (empty or repeated)")
            }
            if k == "general.alignment" {
                guard case let .u32(a) = v, a > 0, a & (a - 1) == 0, Int(a) <= GGUFReader.maxAlignment else {
                    throw FTQError.invalid("gguf.bad-alignment", "general.alignment must be a u32 power of two up to \(GGUFReader.maxAlignment)")
                }
                alignment = Int(a)
            }
        }
        var w = ByteWriter()
        w.bytes(Array("GGUF".utf8))
        w.u32(3)
        w.u64(UInt64(tensors.count))
        w.u64(UInt64(metadata.count))
        for (k, v) in metadata {
            w.string(k)
            w.u32(v.type.rawValue)
            w.value(v)
        }
        var items: [Item] = []
        var names = Set<ExactName>()
        var offset = 0
        for t in tensors {
            guard !t.name.isEmpty, names.insert(ExactName(t.name)).inserted else {
                throw FTQError.invalid("gguf.duplicate-tensor", "cannot write tensor \"\(t.name)\" (empty or repeated name)")
            }
            guard t.name.utf8.count <= Self.maxNameBytes else {
                throw FTQError.invalid("gguf.name-too-long",
                    "tensor \"\(t.name)\": name is \(t.name.utf8.count) bytes; ggml loads names of at most \(Self.maxNameBytes)")
            }
            guard t.shape.count <= GGUFReader.maxDims else {
                throw FTQError.invalid("gguf.too-many-dims", "tensor \"\(t.name)\" has \(t.shape.count) dimensions; GGUF allows at most \(GGUFReader.maxDims)")
            }
            let count = try Checked.product(t.shape, "gguf.size-overflow", "tensor \"\(t.name)\"")
            guard let nbytes = t.type.rowBytes(count), (t.shape.last ?? 1) % t.type.blockSize == 0 else {
                throw FTQError.invalid("gguf.bad-row-size", "tensor \"\(t.name)\": row length is not a multiple of the \(t.type.name) block size")
            }
            guard let padded = alignUp(nbytes, alignment) else { throw FTQError.invalid("gguf.size-overflow", "tensor \"\(t.name)\" is too large") }
            w.string(t.name)
            w.u32(UInt32(t.shape.count))
            for d in t.shape.reversed() { w.u64(UInt64(d)) }
            w.u32(t.type.rawValue)
            w.u64(UInt64(offset))
            items.append(Item(name: t.name, type: t.type, shape: t.shape, nbytes: nbytes, offset: offset, padding: padded - nbytes))
            offset = try Checked.add(offset, padded, "gguf.size-overflow", "file size")
        }
        let pad = alignUp(w.out.count, alignment)! - w.out.count
        w.bytes([UInt8](repeating: 0, count: pad))
        self.items = items
        self.alignment = alignment
        self.headerBytes = w.out
        self.fileSize = w.out.count + offset
    }
}

/// Little-endian serialization of GGUF header fields.
struct ByteWriter {
    var out: [UInt8] = []

    mutating func bytes(_ b: [UInt8]) { out.append(contentsOf: b) }
    mutating func int<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
    }
    mutating func u32(_ v: UInt32) { int(v) }
    mutating func u64(_ v: UInt64) { int(v) }
    mutating func string(_ s: String) {
        u64(UInt64(s.utf8.count))
        out.append(contentsOf: s.utf8)
    }

    mutating func value(_ v: GGUFValue) {
        switch v {
        case let .u8(x): int(x)
        case let .i8(x): int(x)
        case let .u16(x): int(x)
        case let .i16(x): int(x)
        case let .u32(x): int(x)
        case let .i32(x): int(x)
        case let .u64(x): int(x)
        case let .i64(x): int(x)
        case let .f32(x): int(x.bitPattern)
        case let .f64(x): int(x.bitPattern)
        case let .bool(x): out.append(x ? 1 : 0)
        case let .string(s): string(s)
        case let .array(a):
            u32(a.elementType.rawValue)
            u64(UInt64(a.count))
            out.append(contentsOf: a.raw)
        }
    }
}
