import FTQCore

/// Opening safetensors files and directories as a ``Model``.
public enum SafetensorsFile {
    /// Opens one `.safetensors` file: reads and validates its header only.
    public static func open(_ path: String) throws -> Model {
        let file = try InputFile(path)
        let header = try SafetensorsHeader.read(file)
        let tensors = header.entries.map { e in
            TensorEntry(name: e.name, type: .safetensors(e.dtype), shape: e.shape, fileIndex: 0,
                        offset: header.dataStart + e.begin, nbytes: e.end - e.begin,
                        elementCount: e.shape.reduce(1, *))
        }
        return try Model(format: .safetensors, version: nil, path: path, files: [file],
                         metadata: (header.metadata ?? []).map { ($0.0, .string($0.1)) }, tensors: tensors,
                         fileMetadata: [header.metadata])
    }
}

/// The byte layout of a safetensors file ftq is about to write.
///
/// Computed before any data is written so that the header can go first and the tensors can
/// be streamed. The layout is the reference implementation's (`safetensors.serialize`):
/// tensors sorted by descending dtype alignment rank then by name (byte order), packed with
/// no padding; the header is compact JSON with `__metadata__` first, padded with spaces to a
/// multiple of 8 bytes (formats/safetensors.md, "Writing").
public struct SafetensorsLayout: Sendable {
    public struct Item: Sendable {
        public var name: String
        public var dtype: DType
        public var shape: [Int]
        public var nbytes: Int
        /// Index of this tensor in the list given to ``init(tensors:metadata:)``.
        public var source: Int
    }

    /// Tensors in the order their data is written.
    public let items: [Item]
    /// The 8-byte length prefix and the padded header.
    public let headerBytes: [UInt8]
    /// Total file size.
    public let fileSize: Int

    public init(tensors: [(name: String, dtype: DType, shape: [Int])], metadata: [(String, String)]?) throws {
        var items: [Item] = []
        var seen = Set<ExactName>()
        for (k, t) in tensors.enumerated() {
            guard !t.name.isEmpty else {
                throw FTQError.invalid("safetensors.empty-name", "cannot write a tensor with an empty name")
            }
            guard t.name != "__metadata__" else {
                throw FTQError.invalid("safetensors.reserved-name", "cannot write a tensor named \"__metadata__\": the name is reserved")
            }
            guard seen.insert(ExactName(t.name)).inserted else {
                throw FTQError.invalid("model.duplicate-tensor", "tensor \"\(t.name)\" appears twice")
            }
            let count = try Checked.product(t.shape, "safetensors.size-overflow", "tensor \"\(t.name)\"")
            guard let nbytes = t.dtype.byteCount(elements: count) else {
                if count.multipliedReportingOverflow(by: t.dtype.bits).overflow {
                    throw FTQError.invalid("safetensors.size-overflow", "tensor \"\(t.name)\": \(count) elements of \(t.dtype.rawValue) overflow a 64-bit size")
                }
                throw FTQError.invalid("safetensors.partial-byte", "tensor \"\(t.name)\": \(count) elements of \(t.dtype.rawValue) do not fill whole bytes")
            }
            items.append(Item(name: t.name, dtype: t.dtype, shape: t.shape, nbytes: nbytes, source: k))
        }
        items.sort { a, b in
            if a.dtype != b.dtype { return a.dtype > b.dtype }
            return a.name.utf8.lexicographicallyPrecedes(b.name.utf8)
        }
        var json = "{"
        var first = true
        if let metadata {
            json += "\"__metadata__\":{"
            json += metadata.map { JSONText.quote($0.0) + ":" + JSONText.quote($0.1) }.joined(separator: ",")
            json += "}"
            first = false
        }
        var offset = 0
        for it in items {
            if !first { json += "," }
            first = false
            let end = try Checked.add(offset, it.nbytes, "safetensors.size-overflow", "total size")
            json += JSONText.quote(it.name) + ":{\"dtype\":\"" + it.dtype.rawValue + "\",\"shape\":["
            json += it.shape.map(String.init).joined(separator: ",") + "],\"data_offsets\":[\(offset),\(end)]}"
            offset = end
        }
        json += "}"
        var header = Array(json.utf8)
        header.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - header.count % 8) % 8))
        var prefix = [UInt8](repeating: 0, count: 8)
        var n = UInt64(header.count)
        for k in 0..<8 { prefix[k] = UInt8(n & 0xff); n >>= 8 }
        self.items = items
        self.headerBytes = prefix + header
        self.fileSize = headerBytes.count + offset
    }
}
