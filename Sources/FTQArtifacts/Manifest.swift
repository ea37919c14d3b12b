import FTQCore

/// The manifest ftq writes beside every output (formats/manifest.md).
///
/// It names the tool, the command and its effective options, the inputs with their sizes
/// and SHA-256, and every output file with its size, SHA-256 and, for model files, every
/// tensor's dtype, shape, offset, size and SHA-256 of its data. It holds no timestamps, host
/// names or absolute paths: the same inputs and options give the same bytes.
public struct Manifest: Sendable, Equatable {
    public static let formatVersion = 1
    /// The name of a directory output's manifest.
    public static let directoryName = "ftq-manifest.json"
    /// The suffix of a file output's manifest (`model.gguf.manifest.json`).
    public static let fileSuffix = ".manifest.json"

    public struct Input: Sendable, Equatable {
        /// Relative to the manifest's directory.
        public var path: String
        public var size: Int
        public var sha256: String
        public init(path: String, size: Int, sha256: String) {
            self.path = path; self.size = size; self.sha256 = sha256
        }
    }

    public struct Tensor: Sendable, Equatable {
        public var name: String
        public var dtype: String
        public var shape: [Int]
        /// Absolute offset of the data in the file.
        public var offset: Int
        public var nbytes: Int
        public var sha256: String
        public init(name: String, dtype: String, shape: [Int], offset: Int, nbytes: Int, sha256: String) {
            self.name = name; self.dtype = dtype; self.shape = shape; self.offset = offset; self.nbytes = nbytes; self.sha256 = sha256
        }
    }

    public struct Output: Sendable, Equatable {
        /// Relative to the manifest's directory.
        public var path: String
        public var size: Int
        public var sha256: String
        /// For model files: SHA-256 of the bytes outside tensor data (header, metadata,
        /// padding) in file order, so that verify can tell a damaged header from damaged data.
        public var otherSHA256: String?
        public var tensors: [Tensor]
        public init(path: String, size: Int, sha256: String, otherSHA256: String? = nil, tensors: [Tensor]) {
            self.path = path; self.size = size; self.sha256 = sha256; self.otherSHA256 = otherSHA256; self.tensors = tensors
        }
    }

    public var toolVersion: String
    /// The command as run, with paths relative to the manifest's directory and only the
    /// options that change the output (never --threads, --quiet, --force, --json).
    public var command: [String]
    /// Effective options, every one given a value (null where it does not apply).
    public var options: [(String, JSONValue)]
    public var inputs: [Input]
    public var outputs: [Output]
    /// The error of the quantization that made the outputs (`ftq quantize --report`), as
    /// `ftq compare --json` reports it; absent otherwise.
    public var report: JSONValue?

    public init(toolVersion: String, command: [String], options: [(String, JSONValue)], inputs: [Input], outputs: [Output],
                report: JSONValue? = nil) {
        self.toolVersion = toolVersion
        self.command = command
        self.options = options
        self.inputs = inputs
        self.outputs = outputs
        self.report = report
    }

    public static func == (a: Manifest, b: Manifest) -> Bool {
        a.toolVersion == b.toolVersion && a.command == b.command && a.inputs == b.inputs && a.outputs == b.outputs
            && JSONValue.object(a.options) == JSONValue.object(b.options) && a.report == b.report
    }

    // MARK: JSON

    public var json: JSONValue {
        var members = jsonMembers
        if let report { members.append(("report", report)) }
        return .object(members)
    }

    var jsonMembers: [(String, JSONValue)] {
        [
            ("format_version", .int(Self.formatVersion)),
            ("tool", .object([("name", .string("ftq")), ("version", .string(toolVersion))])),
            ("command", .array(command.map { .string($0) })),
            ("options", .object(options)),
            ("inputs", .array(inputs.map { i in
                .object([("path", .string(i.path)), ("size", .int(i.size)), ("sha256", .string(i.sha256))])
            })),
            ("outputs", .array(outputs.map { o in
                .object([
                    ("path", .string(o.path)), ("size", .int(o.size)), ("sha256", .string(o.sha256)),
                    ("other_sha256", o.otherSHA256.map { .string($0) } ?? .null),
                    ("tensors", .array(o.tensors.map { t in
                        .object([
                            ("name", .string(t.name)), ("dtype", .string(t.dtype)),
                            ("shape", .array(t.shape.map { .int($0) })),
                            ("offset", .int(t.offset)), ("nbytes", .int(t.nbytes)), ("sha256", .string(t.sha256)),
                        ])
                    })),
                ])
            })),
        ]
    }

    /// The manifest file's bytes: JSON indented by 2 spaces, then a line feed.
    public var bytes: [UInt8] { Array((JSONText.serialize(json, indent: 2) + "\n").utf8) }

    /// Parses and validates a manifest (formats/manifest.md, "Validation", rules M1-M6).
    public static func parse(_ data: [UInt8]) throws -> Manifest {
        let root: JSONValue
        do { root = try StrictJSON.parse(data) } catch let e as FTQError {
            throw FTQError.invalid("manifest.json", "not valid JSON: \(e.message)")
        }
        func fail(_ what: String) -> FTQError { FTQError.invalid("manifest.schema", what) }
        // M1: the known format version.
        guard case let .object(top) = root else { throw fail("the manifest is not a JSON object") }
        guard root["format_version"]?.nonNegativeInteger == UInt64(formatVersion) else {
            throw FTQError.invalid("manifest.version", "format_version is not \(formatVersion)")
        }
        let known = ["format_version", "tool", "command", "options", "inputs", "outputs", "report"]
        if let unknown = top.first(where: { !known.contains($0.0) }) { throw fail("unknown member \"\(unknown.0)\"") }
        // M2: tool, command, options.
        guard case let .string(version)? = root["tool"]?["version"], root["tool"]?["name"] == .string("ftq") else {
            throw fail("\"tool\" must be {\"name\": \"ftq\", \"version\": ...}")
        }
        guard case let .array(cmd)? = root["command"] else { throw fail("\"command\" must be an array of strings") }
        let command = try cmd.map { v -> String in
            guard case let .string(s) = v else { throw fail("\"command\" must be an array of strings") }
            return s
        }
        guard case let .object(options)? = root["options"] else { throw fail("\"options\" must be an object") }
        if let r = root["report"], case .object = r {} else if root["report"] != nil { throw fail("\"report\" must be an object") }
        // M3: inputs; M4: outputs; M5: sizes and offsets are non-negative integers; M6: digests
        // are 64 lowercase hex digits.
        let fields = JSONFields(code: "manifest.schema")
        let int = fields.int, string = fields.string, digest = fields.digest
        func onlyMembers(_ v: JSONValue, _ allowed: [String], _ what: String) throws {
            try fields.members(v, allowed, what, requireAll: false)
        }
        guard case let .array(ins)? = root["inputs"] else { throw fail("\"inputs\" must be an array") }
        for (k, v) in ins.enumerated() { try onlyMembers(v, ["path", "size", "sha256"], "inputs[\(k)]") }
        let inputs = try ins.enumerated().map { k, v in
            Input(path: try string(v["path"], "inputs[\(k)].path"), size: try int(v["size"], "inputs[\(k)].size"),
                  sha256: try digest(v["sha256"], "inputs[\(k)].sha256"))
        }
        guard case let .array(outs)? = root["outputs"], !outs.isEmpty else { throw fail("\"outputs\" must be a non-empty array") }
        for (k, v) in outs.enumerated() {
            try onlyMembers(v, ["path", "size", "sha256", "other_sha256", "tensors"], "outputs[\(k)]")
            if case let .array(ts)? = v["tensors"] {
                for (j, t) in ts.enumerated() {
                    try onlyMembers(t, ["name", "dtype", "shape", "offset", "nbytes", "sha256"], "outputs[\(k)].tensors[\(j)]")
                }
            }
        }
        var seen = Set<ExactName>()
        let outputs = try outs.enumerated().map { k, v -> Output in
            let path = try string(v["path"], "outputs[\(k)].path")
            try checkRelative(path, what: "outputs[\(k)].path")
            guard seen.insert(ExactName(path)).inserted else { throw fail("output \"\(path)\" is listed twice") }
            guard case let .array(ts)? = v["tensors"] else { throw fail("outputs[\(k)].tensors must be an array") }
            let tensors = try ts.enumerated().map { j, t -> Tensor in
                let w = "outputs[\(k)].tensors[\(j)]"
                guard case let .array(dims)? = t["shape"] else { throw fail("\(w).shape must be an array") }
                return Tensor(name: try string(t["name"], "\(w).name"), dtype: try string(t["dtype"], "\(w).dtype"),
                              shape: try dims.map { try int($0, "\(w).shape") },
                              offset: try int(t["offset"], "\(w).offset"), nbytes: try int(t["nbytes"], "\(w).nbytes"),
                              sha256: try digest(t["sha256"], "\(w).sha256"))
            }
            var other: String? = nil
            if let o = v["other_sha256"], o != .null { other = try digest(o, "outputs[\(k)].other_sha256") }
            return Output(path: path, size: try int(v["size"], "outputs[\(k)].size"),
                          sha256: try digest(v["sha256"], "outputs[\(k)].sha256"), otherSHA256: other, tensors: tensors)
        }
        return Manifest(toolVersion: version, command: command, options: options, inputs: inputs, outputs: outputs, report: root["report"])
    }

    /// Output paths stay inside the manifest's directory: relative, no `..`, no empty parts.
    static func checkRelative(_ path: String, what: String) throws {
        let bytes = Array(path.utf8)
        let parts = bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        if bytes.isEmpty || bytes.first == UInt8(ascii: "/") || bytes.contains(0)
            || parts.contains(where: { $0.isEmpty || Array($0) == [0x2e] || Array($0) == [0x2e, 0x2e] }) {
            throw FTQError.invalid("manifest.path", "\(what) \"\(path)\" is not a relative path inside the manifest's directory")
        }
    }
}
