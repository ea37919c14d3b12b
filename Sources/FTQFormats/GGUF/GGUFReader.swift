import FTQCore

/// Reading GGUF v2/v3 headers (formats/gguf.md, "Validation", rules G1-G20).
public enum GGUFReader {
    /// Limits on untrusted input (formats/gguf.md, "Limits").
    public static let maxArrayDepth = Limits.ggufArrayDepth
    public static let maxAlignment = Limits.ggufMaxAlignment
    public static let maxDims = Limits.ggufMaxDims
    public static let defaultAlignment = 32
    /// Keys and tensor names longer than this are refused (the GGUF specification's limit).
    public static let maxKeyBytes = Limits.ggufKeyBytes
    /// The largest metadata value (one string, or one array's encoded elements) accepted:
    /// 256 MiB, about 50 times the largest tokenizer seen in real files.
    public static let maxValueBytes = Limits.ggufValueBytes

    /// A parsed header of one GGUF file.
    public struct Header: Sendable {
        public var version: Int
        public var metadata: [(String, GGUFValue)]
        public var tensors: [TensorEntry]
        public var alignment: Int
        /// Absolute offset of the data section.
        public var dataStart: Int

        public func value(_ key: String) -> GGUFValue? {
            let k = ExactName(key)
            return metadata.first { ExactName($0.0) == k }?.1
        }
    }

    /// Opens a GGUF file, or a whole split set when `path` is one of its parts.
    public static func open(_ path: String) throws -> Model {
        let file = try InputFile(path)
        let header = try readHeader(file)
        if let count = header.value("split.count")?.unsignedValue, count > 1 {
            return try GGUFSplit.open(first: path, file: file, header: header)
        }
        return try Model(format: .gguf, version: header.version, path: path, files: [file],
                         metadata: header.metadata.map { ($0.0, .gguf($0.1)) }, tensors: header.tensors)
    }

    /// Reads and validates the header of one GGUF file; tensors get `fileIndex`.
    public static func readHeader(_ file: InputFile, fileIndex: Int = 0) throws -> Header {
        do {
            var c = Cursor(file)
            return try parse(&c, fileIndex: fileIndex)
        } catch let e as FTQError {
            throw e.inFile(file.path)
        }
    }

    static func parse(_ c: inout Cursor, fileIndex: Int) throws -> Header {
        let size = c.file.size
        // G1: magic.
        guard size >= 4 else {
            throw FTQError.invalid("gguf.truncated", "file is \(size) bytes, too short for a GGUF header (truncated download?)")
        }
        let magic = try c.bytes(4)
        if magic != Array("GGUF".utf8) {
            if let legacy = ["GGML", "GGMF", "GGJT", "GGLA", "lmgg", "fmgg", "tjgg", "algg"].first(where: { Array($0.utf8) == magic }) {
                throw FTQError.invalid("gguf.legacy-format", "this is a pre-GGUF ggml file (\(legacy)); convert it to GGUF with llama.cpp first")
            }
            if magic.starts(with: Array("vers".utf8)) {
                throw FTQError.invalid("gguf.git-lfs-pointer", "this is a git-lfs pointer file, not the model: fetch the real file with `git lfs pull`")
            }
            throw FTQError.invalid("gguf.bad-magic", "not a GGUF file (magic bytes \(magic.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: " ")))")
        }
        // G2: version 2 or 3, little-endian.
        let version = try c.u32()
        switch version {
        case 2, 3: break
        case 1: throw FTQError.invalid("gguf.unsupported-version", "GGUF version 1 is obsolete and not supported; re-convert the model")
        case 0x0200_0000, 0x0300_0000:
            throw FTQError.invalid("gguf.big-endian", "big-endian GGUF files are not supported")
        default: throw FTQError.invalid("gguf.unsupported-version", "unknown GGUF version \(version)")
        }
        // G3: counts bounded by the bytes that remain.
        let nTensorsRaw = try c.u64()
        let nKVRaw = try c.u64()
        let nTensors = try Checked.int(nTensorsRaw, "gguf.bad-count", "tensor count")
        let nKV = try Checked.int(nKVRaw, "gguf.bad-count", "key-value count")
        // A key-value takes at least 8 (key length) + 1 (key) + 4 (type) + 1 bytes; a tensor
        // info at least 8 + 1 + 4 + 4 + 8 bytes.
        if nKV > (size - c.pos) / 14 {
            throw FTQError.invalid("gguf.bad-count", "header claims \(nKV) key-values but the file has room for at most \((size - c.pos) / 14)")
        }
        if nTensors > (size - c.pos) / 25 {
            throw FTQError.invalid("gguf.bad-count", "header claims \(nTensors) tensors but the file has room for at most \((size - c.pos) / 25)")
        }
        // Capacity grows with what is actually parsed, never from a claimed count.
        var metadata: [(String, GGUFValue)] = []
        var keys = Set<ExactName>()
        for _ in 0..<nKV {
            let keyAt = c.pos
            let key = try c.string(what: "key", maxBytes: maxKeyBytes)
            // G4: keys non-empty and unique.
            if key.isEmpty { throw FTQError.invalid("gguf.empty-key", "empty metadata key at byte \(keyAt)") }
            if !keys.insert(ExactName(key)).inserted {
                throw FTQError.invalid("gguf.duplicate-key", "metadata key \"\(key)\" appears twice (at byte \(keyAt))")
            }
            let rawType = try c.u32()
            guard let type = GGUFValueType(rawValue: rawType) else {
                throw FTQError.invalid("gguf.unknown-value-type", "metadata key \"\(key)\": unknown value type \(rawType)")
            }
            let value = try c.value(type, key: key, depth: 0)
            metadata.append((key, value))
        }
        // G5: general.alignment is a u32 power of two, at most 1 MiB.
        var alignment = defaultAlignment
        if let a = metadata.first(where: { $0.0 == "general.alignment" })?.1 {
            guard case let .u32(v) = a else {
                throw FTQError.invalid("gguf.bad-alignment", "general.alignment is \(a.typeName), expected u32")
            }
            guard v > 0, v & (v - 1) == 0, Int(v) <= maxAlignment else {
                throw FTQError.invalid("gguf.bad-alignment", "general.alignment \(v) is not a power of two between 1 and \(maxAlignment)")
            }
            alignment = Int(v)
        }
        struct RawInfo { var name: String; var ne: [Int]; var type: GGMLType; var offset: Int; var nbytes: Int; var count: Int }
        var infos: [RawInfo] = []
        var names = Set<ExactName>()
        for _ in 0..<nTensors {
            let at = c.pos
            let name = try c.string(what: "tensor name", maxBytes: maxKeyBytes)
            // G6: names non-empty and unique.
            if name.isEmpty { throw FTQError.invalid("gguf.empty-name", "empty tensor name at byte \(at)") }
            if !names.insert(ExactName(name)).inserted {
                throw FTQError.invalid("gguf.duplicate-tensor", "tensor name \"\(name)\" appears twice (at byte \(at))")
            }
            // G7: at most 4 dimensions, each within int64.
            let nDims = try c.u32()
            guard nDims <= UInt32(maxDims) else {
                throw FTQError.invalid("gguf.too-many-dims", "tensor \"\(name)\" has \(nDims) dimensions; GGUF allows at most \(maxDims)")
            }
            var ne: [Int] = []
            for _ in 0..<nDims {
                let d = try c.u64()
                guard d <= UInt64(Int64.max) else {
                    throw FTQError.invalid("gguf.bad-dim", "tensor \"\(name)\": dimension \(d) is larger than 2^63-1")
                }
                ne.append(Int(d))
            }
            // G8: a known type.
            let rawType = try c.u32()
            guard let type = GGMLType.known(rawType) else {
                if let old = GGMLType.removed[rawType] {
                    throw FTQError.invalid("gguf.unknown-type", "tensor \"\(name)\": ggml type \(rawType) (\(old)) was removed from ggml; re-quantize with a current llama.cpp")
                }
                throw FTQError.invalid("gguf.unknown-type", "tensor \"\(name)\": unknown ggml type \(rawType)")
            }
            // G9: element count and byte size without overflow; rows a whole number of blocks.
            let count = try Checked.product(ne, "gguf.size-overflow", "tensor \"\(name)\" shape")
            let row = ne.first ?? 1
            guard row % type.blockSize == 0 else {
                throw FTQError.invalid("gguf.bad-row-size",
                    "tensor \"\(name)\": row length \(row) is not a multiple of the \(type.name) block size \(type.blockSize)")
            }
            let nbytes = try Checked.mul(count / type.blockSize, type.typeSize, "gguf.size-overflow", "tensor \"\(name)\" byte size")
            // G10: offsets aligned.
            let offset = try Checked.int(try c.u64(), "gguf.tensor-out-of-bounds", "tensor \"\(name)\" offset")
            guard offset % alignment == 0 else {
                throw FTQError.invalid("gguf.misaligned", "tensor \"\(name)\": offset \(offset) is not a multiple of the alignment \(alignment)")
            }
            infos.append(RawInfo(name: name, ne: ne, type: type, offset: offset, nbytes: nbytes, count: count))
        }
        let infoEnd = c.pos
        guard let dataStart = alignUp(infoEnd, alignment) else {
            throw FTQError.invalid("gguf.size-overflow", "data section offset overflows")
        }
        // G11: every tensor inside the file; G12: no two tensors overlap.
        var tensors: [TensorEntry] = []
        tensors.reserveCapacity(infos.count)
        for r in infos {
            let start = try Checked.add(dataStart, r.offset, "gguf.tensor-out-of-bounds", "tensor \"\(r.name)\" offset")
            let end = try Checked.add(start, r.nbytes, "gguf.tensor-out-of-bounds", "tensor \"\(r.name)\" end")
            if end > size {
                throw FTQError.invalid("gguf.tensor-out-of-bounds",
                    "tensor \"\(r.name)\" needs bytes [\(start), \(end)) but the file ends at \(size) (truncated download?)")
            }
            tensors.append(TensorEntry(name: r.name, type: .ggml(r.type), shape: r.ne.reversed(), fileIndex: fileIndex,
                                       offset: start, nbytes: r.nbytes, elementCount: r.count))
        }
        let byStart = tensors.filter { $0.nbytes > 0 }.sorted { $0.offset < $1.offset }
        for k in byStart.indices.dropFirst() where byStart[k].offset < byStart[k - 1].offset + byStart[k - 1].nbytes {
            throw FTQError.invalid("gguf.overlap", "tensors \"\(byStart[k - 1].name)\" and \"\(byStart[k].name)\" overlap")
        }
        return Header(version: Int(version), metadata: metadata, tensors: tensors, alignment: alignment, dataStart: dataStart)
    }

    /// A bounds-checked little-endian reader over a file, buffered in 1 MiB windows.
    struct Cursor {
        let file: InputFile
        var pos = 0
        private var window: [UInt8] = []
        private var windowStart = 0

        init(_ file: InputFile) { self.file = file }

        /// Makes `n` bytes at `pos` available in the window, or fails naming the offset.
        private mutating func ensure(_ n: Int) throws {
            if pos >= windowStart && pos + n <= windowStart + window.count { return }
            guard n <= file.size - pos else {
                throw FTQError.invalid("gguf.truncated", "file ends at byte \(file.size) while reading \(n) bytes at offset \(pos) (truncated download?)")
            }
            let len = min(max(n, 1 << 20), file.size - pos)
            window = try file.read(at: pos, count: len)
            windowStart = pos
        }

        mutating func bytes(_ n: Int) throws -> [UInt8] {
            try ensure(n)
            let s = pos - windowStart
            pos += n
            return Array(window[s..<s + n])
        }

        @inline(__always)
        mutating func int<T: FixedWidthInteger>(_: T.Type) throws -> T {
            let n = MemoryLayout<T>.size
            try ensure(n)
            let s = pos - windowStart
            var v: T = 0
            for k in 0..<n { v |= T(truncatingIfNeeded: window[s + k]) << (8 * k) }
            pos += n
            return v
        }

        mutating func u32() throws -> UInt32 { try int(UInt32.self) }
        mutating func u64() throws -> UInt64 { try int(UInt64.self) }

        /// G13: a string's length is bounded by the bytes that remain; G14: valid UTF-8.
        mutating func string(what: @autoclosure () -> String, maxBytes: Int = Int.max) throws -> String {
            let at = pos
            let len = try u64()
            if len > UInt64(maxBytes) {
                throw FTQError.invalid("gguf.bad-string", "\(what()) at byte \(at) claims \(len) bytes; the limit is \(maxBytes)")
            }
            guard len <= UInt64(file.size - pos) else {
                throw FTQError.invalid("gguf.bad-string", "\(what()) at byte \(at) claims \(len) bytes but only \(file.size - pos) remain")
            }
            let n = Int(len)
            try ensure(n)
            let s = pos - windowStart
            pos += n
            let str = window.withUnsafeBufferPointer { String(validating: UnsafeBufferPointer(rebasing: $0[s..<s + n]), as: UTF8.self) }
            guard let str else { throw FTQError.invalid("gguf.bad-string", "\(what()) at byte \(at) is not valid UTF-8") }
            return str
        }

        mutating func value(_ type: GGUFValueType, key: String, depth: Int) throws -> GGUFValue {
            switch type {
            case .u8: return .u8(try int(UInt8.self))
            case .i8: return .i8(try int(Int8.self))
            case .u16: return .u16(try int(UInt16.self))
            case .i16: return .i16(try int(Int16.self))
            case .u32: return .u32(try u32())
            case .i32: return .i32(try int(Int32.self))
            case .u64: return .u64(try u64())
            case .i64: return .i64(try int(Int64.self))
            case .f32: return .f32(Float(bitPattern: try u32()))
            case .f64: return .f64(Double(bitPattern: try u64()))
            case .bool:
                let at = pos
                let b = try int(UInt8.self)
                // G15: booleans are 0 or 1.
                guard b <= 1 else { throw FTQError.invalid("gguf.bad-bool", "metadata key \"\(key)\": boolean byte \(b) at \(at) is not 0 or 1") }
                return .bool(b == 1)
            case .string: return .string(try string(what: "value of \"\(key)\"", maxBytes: GGUFReader.maxValueBytes))
            case .array:
                return .array(try array(key: key, depth: depth))
            }
        }

        /// An array value: G16 nesting at most maxArrayDepth deep; G17 counts bounded by the
        /// bytes that remain. The elements are validated and kept as their encoded bytes.
        mutating func array(key: String, depth: Int) throws -> GGUFArray {
            guard depth < GGUFReader.maxArrayDepth else {
                throw FTQError.invalid("gguf.array-too-deep", "metadata key \"\(key)\": arrays nested deeper than \(GGUFReader.maxArrayDepth)")
            }
            let rawType = try u32()
            guard let et = GGUFValueType(rawValue: rawType) else {
                throw FTQError.invalid("gguf.unknown-value-type", "metadata key \"\(key)\": unknown array element type \(rawType)")
            }
            let at = pos
            let count = try u64()
            let minSize = UInt64(et.fixedSize ?? (et == .string ? 8 : 12))
            let remaining = UInt64(file.size - pos)
            guard count <= remaining / minSize else {
                throw FTQError.invalid("gguf.bad-array", "metadata key \"\(key)\": array at byte \(at) claims \(count) elements but only \(remaining) bytes remain")
            }
            let n = Int(count)
            func tooLarge(_ bytes: Int) -> FTQError {
                FTQError.invalid("gguf.value-too-large",
                    "metadata key \"\(key)\": array at byte \(at) holds at least \(bytes) bytes; the limit for one value is \(GGUFReader.maxValueBytes)")
            }
            if let size = et.fixedSize {
                guard n <= GGUFReader.maxValueBytes / size else { throw tooLarge(n * size) }
                let raw = try bytes(n * size)
                if et == .bool, let bad = raw.firstIndex(where: { $0 > 1 }) {
                    throw FTQError.invalid("gguf.bad-bool", "metadata key \"\(key)\": boolean byte \(raw[bad]) at \(pos - raw.count + bad) is not 0 or 1")
                }
                return GGUFArray(elementType: et, count: n, raw: raw)
            }
            var raw: [UInt8] = []
            for _ in 0..<n {
                if et == .string {
                    let s = try string(what: "element of \"\(key)\"", maxBytes: GGUFReader.maxValueBytes)
                    withUnsafeBytes(of: UInt64(s.utf8.count).littleEndian) { raw.append(contentsOf: $0) }
                    raw.append(contentsOf: s.utf8)
                } else {
                    let inner = try array(key: key, depth: depth + 1)
                    withUnsafeBytes(of: inner.elementType.rawValue.littleEndian) { raw.append(contentsOf: $0) }
                    withUnsafeBytes(of: UInt64(inner.count).littleEndian) { raw.append(contentsOf: $0) }
                    raw.append(contentsOf: inner.raw)
                }
                if raw.count > GGUFReader.maxValueBytes { throw tooLarge(raw.count) }
            }
            return GGUFArray(elementType: et, count: n, raw: raw)
        }
    }
}
