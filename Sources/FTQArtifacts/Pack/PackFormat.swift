import FTQCore

/// The `.ftqz` pack format (formats/ftqz.md): a header, independent zstd frames, a JSON index
/// and a trailer.
///
/// ```
/// 0        16 bytes   header: magic, version, flags
/// 16       ...        frames, in index order
/// X        L bytes    index (JSON)
/// X + L    56 bytes   trailer: X, L, SHA-256 of the index, end magic
/// ```
public enum PackFormat {
    /// `\x89FTQZ\r\n\x1a` (formats/ftqz.md, "Header").
    public static let magic: [UInt8] = [0x89, 0x46, 0x54, 0x51, 0x5A, 0x0D, 0x0A, 0x1A]
    /// `FTQZ-END` (formats/ftqz.md, "Trailer").
    public static let endMagic: [UInt8] = Array("FTQZ-END".utf8)
    public static let version: UInt32 = 1
    public static let headerSize = 16
    public static let trailerSize = 56

    /// The uncompressed size of the frames the writer makes (the last frame of a region may
    /// be shorter): 4 MiB.
    public static let frameSize = 4 << 20
    /// The largest uncompressed frame a reader accepts (rule F1): 16 MiB.
    public static let maxFrameSize = Limits.packFrameBytes
    /// The largest index a reader accepts (rule R3): 64 MiB.
    public static let maxIndexSize = Limits.packIndexBytes
    /// The longest file name, in bytes of UTF-8 (rule N1).
    public static let maxNameBytes = Limits.packNameBytes
    /// Compression levels `--level` accepts.
    public static let levels = 1...22
    public static let defaultLevel = 3
    /// The longest gap between two tensors of the same element size that a byte-plane region
    /// takes in (GGUF alignment padding), in bytes.
    static let maxAbsorbedGap = 4096

    /// The 16-byte header.
    public static var header: [UInt8] {
        magic + le32(version) + le32(0)
    }

    /// The 56-byte trailer.
    public static func trailer(indexOffset: Int, indexLength: Int, indexSHA256: [UInt8]) -> [UInt8] {
        precondition(indexSHA256.count == 32)
        return le64(UInt64(indexOffset)) + le64(UInt64(indexLength)) + indexSHA256 + endMagic
    }

    static func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
    static func le64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
    static func readLE32(_ b: ArraySlice<UInt8>) -> UInt32 {
        b.reversed().reduce(0) { $0 << 8 | UInt32($1) }
    }
    static func readLE64(_ b: ArraySlice<UInt8>) -> UInt64 {
        b.reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// A file name stored in a pack (rules N1-N3): one path component, as a directory entry
    /// can hold it.
    public static func validName(_ name: String) -> Bool {
        let b = Array(name.utf8)
        return !b.isEmpty && b.count <= maxNameBytes && !b.contains(0) && !b.contains(UInt8(ascii: "/"))
            && b != [0x2e] && b != [0x2e, 0x2e] && !name.hasByteSuffix(".ftq-tmp")
    }
}

/// The index of a pack: every file, its SHA-256, its tensors and its frames
/// (formats/ftqz.md, "Index").
public struct PackIndex: Sendable, Equatable {
    /// One zstd frame: `size` bytes of the file once decompressed, `compressedSize` bytes in
    /// the pack whose SHA-256 is `sha256`, stored as `planes` byte planes (1: as they are).
    public struct Frame: Sendable, Equatable {
        public var size: Int
        public var compressedSize: Int
        public var planes: Int
        public var sha256: String
        public init(size: Int, compressedSize: Int, planes: Int, sha256: String) {
            self.size = size; self.compressedSize = compressedSize; self.planes = planes; self.sha256 = sha256
        }
    }

    public struct File: Sendable, Equatable {
        public var name: String
        public var size: Int
        public var sha256: String
        /// For a file with tensors: the SHA-256 of its bytes outside all tensors' data, in file
        /// order (formats/manifest.md, `other_sha256`); nil otherwise.
        public var otherSHA256: String?
        /// The tensors of a safetensors or GGUF file in ascending offset (empty for other files).
        public var tensors: [Manifest.Tensor]
        public var frames: [Frame]
        public init(name: String, size: Int, sha256: String, otherSHA256: String?, tensors: [Manifest.Tensor], frames: [Frame]) {
            self.name = name; self.size = size; self.sha256 = sha256; self.otherSHA256 = otherSHA256
            self.tensors = tensors; self.frames = frames
        }
    }

    /// The zstd level the pack was written with (for information; reading does not need it).
    public var level: Int
    public var files: [File]

    public init(level: Int, files: [File]) {
        self.level = level
        self.files = files
    }

    public var totalSize: Int { files.reduce(0) { $0 &+ $1.size } }

    public var json: JSONValue {
        .object([
            ("level", .int(level)),
            ("files", .array(files.map { f in
                .object([
                    ("name", .string(f.name)),
                    ("size", .int(f.size)),
                    ("sha256", .string(f.sha256)),
                    ("other_sha256", f.otherSHA256.map { .string($0) } ?? .null),
                    ("tensors", .array(f.tensors.map { t in
                        .object([
                            ("name", .string(t.name)), ("dtype", .string(t.dtype)),
                            ("shape", .array(t.shape.map { .int($0) })),
                            ("offset", .int(t.offset)), ("nbytes", .int(t.nbytes)), ("sha256", .string(t.sha256)),
                        ])
                    })),
                    ("frames", .array(f.frames.map { .array([.int($0.size), .int($0.compressedSize), .int($0.planes), .string($0.sha256)]) })),
                ])
            })),
        ])
    }

    /// The index's bytes: compact JSON, UTF-8.
    public var bytes: [UInt8] { Array(JSONText.serialize(json).utf8) }

    /// Parses and validates an index whose SHA-256 has been checked (formats/ftqz.md, rules
    /// R5 and R6, with N1-N3 and F1-F3). `frameBytes` is the length of the frame section; the frames
    /// must fill it exactly.
    public static func parse(_ data: [UInt8], frameBytes: Int) throws -> PackIndex {
        let root: JSONValue
        do { root = try StrictJSON.parse(data) } catch let e as FTQError {
            throw FTQError.invalid("ftqz.index-syntax", "the index is not valid JSON: \(e.message)")
        }
        let fields = JSONFields(code: "ftqz.index-schema", prefix: "index: ")
        let fail = fields.fail, int = fields.int, string = fields.string, digest = fields.digest
        func members(_ v: JSONValue, _ known: [String], _ what: String) throws {
            try fields.members(v, known, what, requireAll: true)
        }
        // R5: the top-level object.
        try members(root, ["level", "files"], "the index")
        let level = try int(root["level"], "level")
        guard case let .array(fileValues)? = root["files"] else { throw fail("\"files\" must be an array") }
        var names = Set<ExactName>()
        var files: [File] = []
        files.reserveCapacity(fileValues.count)
        var frameTotal = 0
        for (k, fv) in fileValues.enumerated() {
            let w = "files[\(k)]"
            try members(fv, ["name", "size", "sha256", "other_sha256", "tensors", "frames"], w)
            let name = try string(fv["name"], "\(w).name")
            // N1-N3: one path component, unique.
            guard PackFormat.validName(name) else {
                throw FTQError.invalid("ftqz.bad-name", "index: \(w).name \"\(name)\" is not a plain file name")
            }
            guard names.insert(ExactName(name)).inserted else {
                throw FTQError.invalid("ftqz.duplicate-name", "index: \"\(name)\" is listed twice")
            }
            let size = try int(fv["size"], "\(w).size")
            let sha = try digest(fv["sha256"], "\(w).sha256")
            let other = fv["other_sha256"] == .null ? nil : try digest(fv["other_sha256"], "\(w).other_sha256")
            // R6: tensors lie inside their file.
            guard case let .array(tvs)? = fv["tensors"] else { throw fail("\(w).tensors must be an array") }
            let tensors = try tvs.enumerated().map { j, tv -> Manifest.Tensor in
                let tw = "\(w).tensors[\(j)]"
                try members(tv, ["name", "dtype", "shape", "offset", "nbytes", "sha256"], tw)
                guard case let .array(dims)? = tv["shape"] else { throw fail("\(tw).shape must be an array") }
                let t = Manifest.Tensor(name: try string(tv["name"], "\(tw).name"), dtype: try string(tv["dtype"], "\(tw).dtype"),
                                        shape: try dims.map { try int($0, "\(tw).shape") },
                                        offset: try int(tv["offset"], "\(tw).offset"), nbytes: try int(tv["nbytes"], "\(tw).nbytes"),
                                        sha256: try digest(tv["sha256"], "\(tw).sha256"))
                let end = try Checked.add(t.offset, t.nbytes, "ftqz.bad-tensor", "\(tw) offset + nbytes")
                guard end <= size else {
                    throw FTQError.invalid("ftqz.bad-tensor", "index: \(tw) (\"\(t.name)\") ends at byte \(end), past the end of \"\(name)\" (\(size) bytes)")
                }
                return t
            }
            // F1-F3: frames.
            guard case let .array(fvs)? = fv["frames"] else { throw fail("\(w).frames must be an array") }
            var frames: [Frame] = []
            frames.reserveCapacity(fvs.count)
            var covered = 0
            for (j, frv) in fvs.enumerated() {
                let fw = "\(w).frames[\(j)]"
                guard case let .array(items) = frv, items.count == 4 else { throw fail("\(fw) must be [size, compressed size, planes, sha256]") }
                let n = try int(items[0], "\(fw) size"), c = try int(items[1], "\(fw) compressed size"), p = try int(items[2], "\(fw) planes")
                let d = try digest(items[3], "\(fw) sha256")
                guard n >= 1, n <= PackFormat.maxFrameSize else {
                    throw FTQError.invalid("ftqz.bad-frame", "index: \(fw) of \"\(name)\" has size \(n); frames hold 1 to \(PackFormat.maxFrameSize) bytes")
                }
                guard c >= ZstdFrame.minimumSize, c <= ZstdFrame.compressBound(n) else {
                    throw FTQError.invalid("ftqz.bad-frame", "index: \(fw) of \"\(name)\" has compressed size \(c), impossible for \(n) bytes")
                }
                guard p == 1 || p == 2 || p == 4, n % p == 0 else {
                    throw FTQError.invalid("ftqz.bad-frame", "index: \(fw) of \"\(name)\": \(p) planes of \(n) bytes")
                }
                covered = try Checked.add(covered, n, "ftqz.bad-size", "\(fw) sizes")
                frameTotal = try Checked.add(frameTotal, c, "ftqz.bad-layout", "compressed sizes")
                frames.append(Frame(size: n, compressedSize: c, planes: p, sha256: d))
            }
            // R6: the frames rebuild the whole file.
            guard covered == size else {
                throw FTQError.invalid("ftqz.bad-size", "index: the frames of \"\(name)\" hold \(covered) bytes, the file \(size)")
            }
            files.append(File(name: name, size: size, sha256: sha, otherSHA256: other, tensors: tensors, frames: frames))
        }
        // R6: the frames fill the frame section exactly.
        guard frameTotal == frameBytes else {
            throw FTQError.invalid("ftqz.bad-layout", "index: the frames take \(frameTotal) bytes, the pack holds \(frameBytes) bytes of frames")
        }
        return PackIndex(level: level, files: files)
    }
}
