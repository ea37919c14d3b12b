import FTQCore

/// Parsing and validation of a safetensors header (formats/safetensors.md).
public enum SafetensorsHeader {
    /// The largest header accepted, in bytes (formats/safetensors.md, "Limits"): 256 MiB,
    /// above the reference implementation's 100,000,000, which real headers exceed.
    public static let maxHeaderBytes = Limits.safetensorsHeaderBytes

    /// One tensor as declared in a header.
    public struct Entry: Sendable, Equatable {
        public var name: String
        public var dtype: DType
        public var shape: [Int]
        /// Offsets relative to the start of the data section.
        public var begin: Int
        public var end: Int
    }

    /// A validated header.
    public struct Parsed: Sendable {
        /// `__metadata__` in file order; nil when the header has none.
        public var metadata: [(String, String)]?
        /// Tensors sorted by data offset.
        public var entries: [Entry]
        /// Bytes of the header JSON (the `N` of the 8-byte prefix).
        public var headerLength: Int
        /// Absolute offset of the data section (8 + N).
        public var dataStart: Int
    }

    /// Reads and validates the header of `file` (§ "Validation", rules S1-S14).
    public static func read(_ file: InputFile) throws -> Parsed {
        do {
            return try readUnlabelled(file)
        } catch let e as FTQError {
            throw e.inFile(file.path)
        }
    }

    static func readUnlabelled(_ file: InputFile) throws -> Parsed {
        let size = file.size
        // S1: at least the 8-byte length prefix.
        if size > 0 {
            let probe = try file.read(at: 0, count: min(size, 24))
            if probe.starts(with: Array("version https://git-lfs".utf8)) {
                throw FTQError.invalid("safetensors.git-lfs-pointer",
                    "this is a git-lfs pointer file, not the model: fetch the real file with `git lfs pull` (or download it with huggingface-cli)")
            }
        }
        guard size >= 8 else {
            throw FTQError.invalid("safetensors.truncated", "file is \(size) bytes, too short for a safetensors header (truncated download?)")
        }
        let prefix = try file.read(at: 0, count: 8)
        var n: UInt64 = 0
        for k in 0..<8 { n |= UInt64(prefix[k]) << (8 * UInt64(k)) }
        // S2: header size cap.
        guard n <= UInt64(maxHeaderBytes) else {
            throw FTQError.invalid("safetensors.header-too-large",
                "header length \(n) is over the \(maxHeaderBytes)-byte cap (not a safetensors file, or a corrupt one)")
        }
        let headerLength = Int(n)
        // S3: the header must fit in the file.
        guard 8 + headerLength <= size else {
            throw FTQError.invalid("safetensors.truncated",
                "header says it is \(headerLength) bytes but the file has only \(size - 8) after the length prefix (truncated download?)")
        }
        let json = try file.read(at: 8, count: headerLength)
        let parsed = try parse(json: json, dataLength: size - 8 - headerLength)
        return Parsed(metadata: parsed.metadata, entries: parsed.entries, headerLength: headerLength, dataStart: 8 + headerLength)
    }

    /// Validates header JSON bytes against a data section of `dataLength` bytes.
    public static func parse(json: [UInt8], dataLength: Int) throws -> (metadata: [(String, String)]?, entries: [Entry]) {
        // S4: the header is a JSON object, starting with '{'.
        guard json.first == UInt8(ascii: "{") else {
            throw FTQError.invalid("safetensors.header-start", "header does not start with '{' (not a safetensors file?)")
        }
        let root: JSONValue
        do {
            root = try StrictJSON.parse(json)
        } catch let e as FTQError {
            // S5: strict JSON; duplicate keys keep their own code.
            var e2 = e
            if e.code == "json.duplicate-key" { e2.code = "safetensors.duplicate-key" }
            e2.message = "header: " + e.message
            throw e2
        }
        guard case let .object(members) = root else {
            throw FTQError.invalid("safetensors.header-start", "header is not a JSON object")
        }
        var metadata: [(String, String)]? = nil
        var entries: [Entry] = []
        entries.reserveCapacity(members.count)
        for (name, value) in members {
            if name == "__metadata__" {
                // S6: string to string.
                guard case let .object(items) = value else {
                    throw FTQError.invalid("safetensors.bad-metadata", "__metadata__ is \(value.kindName), expected an object of strings")
                }
                metadata = []
                for (k, v) in items {
                    guard case let .string(s) = v else {
                        throw FTQError.invalid("safetensors.bad-metadata", "__metadata__[\"\(k)\"] is \(v.kindName), expected a string")
                    }
                    metadata!.append((k, s))
                }
                continue
            }
            entries.append(try entry(name, value))
        }
        try validateLayout(&entries, dataLength: dataLength)
        return (metadata, entries)
    }

    static func entry(_ name: String, _ value: JSONValue) throws -> Entry {
        // S7: non-empty names.
        if name.isEmpty { throw FTQError.invalid("safetensors.empty-name", "a tensor has an empty name") }
        guard case let .object(fields) = value else {
            throw FTQError.invalid("safetensors.bad-entry", "tensor \"\(name)\": entry is \(value.kindName), expected an object")
        }
        // S8: exactly dtype, shape, data_offsets.
        for (k, _) in fields where !["dtype", "shape", "data_offsets"].contains(k) {
            throw FTQError.invalid("safetensors.unknown-field", "tensor \"\(name)\": unknown field \"\(k)\"")
        }
        guard let dt = value["dtype"], let sh = value["shape"], let off = value["data_offsets"] else {
            let missing = ["dtype", "shape", "data_offsets"].first { value[$0] == nil }!
            throw FTQError.invalid("safetensors.bad-entry", "tensor \"\(name)\": missing \"\(missing)\"")
        }
        // S9: a known dtype.
        guard case let .string(dts) = dt else {
            throw FTQError.invalid("safetensors.unknown-dtype", "tensor \"\(name)\": dtype is \(dt.kindName), expected a string")
        }
        guard let dtype = DType(rawValue: dts) else {
            throw FTQError.invalid("safetensors.unknown-dtype", "tensor \"\(name)\": unknown dtype \"\(dts)\"")
        }
        // S10: shape of non-negative integers.
        guard case let .array(dims) = sh else {
            throw FTQError.invalid("safetensors.bad-shape", "tensor \"\(name)\": shape is \(sh.kindName), expected an array")
        }
        var shape: [Int] = []
        for d in dims {
            guard let v = d.nonNegativeInteger, v <= UInt64(Int.max) else {
                let text: String
                if case let .number(t) = d { text = t } else { text = d.kindName }
                throw FTQError.invalid("safetensors.bad-shape", "tensor \"\(name)\": dimension \(text) is not a non-negative integer")
            }
            shape.append(Int(v))
        }
        // S11: two non-negative integer offsets, begin <= end.
        guard case let .array(o) = off, o.count == 2,
              let b = o[0].nonNegativeInteger, let e = o[1].nonNegativeInteger,
              b <= UInt64(Int.max), e <= UInt64(Int.max) else {
            throw FTQError.invalid("safetensors.bad-offsets", "tensor \"\(name)\": data_offsets must be two non-negative integers")
        }
        guard b <= e else {
            throw FTQError.invalid("safetensors.bad-offsets", "tensor \"\(name)\": data_offsets [\(b), \(e)] end before they begin")
        }
        // S12: dtype x shape equals the byte span.
        let count = try Checked.product(shape, "safetensors.size-overflow", "tensor \"\(name)\": shape \(shape)")
        guard let nbytes = dtype.byteCount(elements: count) else {
            if count.multipliedReportingOverflow(by: dtype.bits).overflow {
                throw FTQError.invalid("safetensors.size-overflow", "tensor \"\(name)\": \(count) elements of \(dtype.rawValue) overflow a 64-bit size")
            }
            throw FTQError.invalid("safetensors.partial-byte", "tensor \"\(name)\": \(count) elements of \(dtype.rawValue) do not fill a whole number of bytes")
        }
        guard Int(e - b) == nbytes else {
            throw FTQError.invalid("safetensors.size-mismatch",
                "tensor \"\(name)\": \(dtype.rawValue) \(shape) needs \(nbytes) bytes but data_offsets [\(b), \(e)] span \(e - b)")
        }
        return Entry(name: name, dtype: dtype, shape: shape, begin: Int(b), end: Int(e))
    }

    /// S13-S14: tensors tile the data section exactly: no holes, no overlaps, nothing after
    /// the last tensor, nothing past the end of the file.
    static func validateLayout(_ entries: inout [Entry], dataLength: Int) throws {
        entries.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var pos = 0
        for e in entries {
            if e.begin > pos {
                throw FTQError.invalid("safetensors.hole",
                    "tensor \"\(e.name)\" starts at data byte \(e.begin) but the previous tensor ends at \(pos): \(e.begin - pos) bytes belong to no tensor")
            }
            if e.begin < pos {
                throw FTQError.invalid("safetensors.overlap",
                    "tensor \"\(e.name)\" at data bytes [\(e.begin), \(e.end)) overlaps the previous tensor, which ends at \(pos)")
            }
            pos = e.end
        }
        if pos > dataLength {
            let last = entries.last!
            throw FTQError.invalid("safetensors.truncated",
                "tensor \"\(last.name)\" ends at data byte \(pos) but the file holds only \(dataLength) bytes of data (truncated download?)")
        }
        if pos < dataLength {
            throw FTQError.invalid("safetensors.trailing-bytes",
                "\(dataLength - pos) bytes after the last tensor belong to no tensor")
        }
    }
}
