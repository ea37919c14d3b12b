import FTQCore

/// Split GGUF sets written by `gguf-split` (formats/gguf.md, "Split files"):
/// `NAME-00001-of-00003.gguf` ..., keys `split.no` (u16, 0-based), `split.count` (u16),
/// `split.tensors.count` (i32); the first part carries the metadata.
public enum GGUFSplit {
    /// Parses `PREFIX-NNNNN-of-MMMMM.gguf` into (prefix, part, count).
    public static func parseName(_ path: String) -> (prefix: String, part: Int, count: Int)? {
        guard path.hasByteSuffix(".gguf") else { return nil }
        let stem = Array(path.dropLast(5).utf8)
        // "-" 5 digits "-of-" 5 digits = 15 bytes
        guard stem.count > 15 else { return nil }
        let tail = stem[(stem.count - 15)...]
        let t = Array(tail)
        guard t[0] == UInt8(ascii: "-"), Array(t[6..<10]) == Array("-of-".utf8),
              t[1..<6].allSatisfy({ $0 >= 48 && $0 <= 57 }), t[10..<15].allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        let part = Int(String(decoding: t[1..<6], as: UTF8.self))!
        let count = Int(String(decoding: t[10..<15], as: UTF8.self))!
        let prefix = String(decoding: stem[..<(stem.count - 15)], as: UTF8.self)
        return (prefix, part, count)
    }

    public static func partName(prefix: String, part: Int, count: Int) -> String {
        func pad(_ n: Int) -> String { let s = String(n); return String(repeating: "0", count: max(0, 5 - s.count)) + s }
        return "\(prefix)-\(pad(part))-of-\(pad(count)).gguf"
    }

    /// Opens every part of the set that `path` belongs to (rules G18-G20).
    static func open(first path: String, file: InputFile, header: GGUFReader.Header) throws -> Model {
        guard let count = header.value("split.count")?.unsignedValue, let (prefix, _, nameCount) = parseName(path) else {
            throw FTQError.invalid("gguf.split-name", file: path,
                "file has split.count > 1 but its name is not NAME-NNNNN-of-MMMMM.gguf; cannot find the other parts")
        }
        guard Int(count) == nameCount else {
            throw FTQError.invalid("gguf.split-mismatch", file: path, "split.count is \(count) but the file name says \(nameCount) parts")
        }
        var files: [InputFile] = []
        var headers: [GGUFReader.Header] = []
        for part in 1...nameCount {
            let p = partName(prefix: prefix, part: part, count: nameCount)
            // G18: every part exists.
            if case .missing = PathKind.of(p) {
                throw FTQError.invalid("gguf.split-missing", file: path, "split part \(part) of \(nameCount) (\(p)) is missing")
            }
            let f = p == path ? file : try InputFile(p)
            let h = p == path ? header : try GGUFReader.readHeader(f, fileIndex: part - 1)
            // G19: each part says which part it is.
            guard h.value("split.no")?.unsignedValue == UInt64(part - 1), h.value("split.count")?.unsignedValue == count else {
                throw FTQError.invalid("gguf.split-mismatch", file: p, "split.no/split.count do not say part \(part - 1) of \(count)")
            }
            files.append(f)
            var h2 = h
            for k in h2.tensors.indices { h2.tensors[k].fileIndex = part - 1 }
            headers.append(h2)
        }
        let tensors = headers.flatMap(\.tensors)
        // G20: the total matches split.tensors.count.
        if let expected = headers[0].value("split.tensors.count")?.unsignedValue, expected != UInt64(tensors.count) {
            throw FTQError.invalid("gguf.split-mismatch", file: path, "split.tensors.count is \(expected) but the parts hold \(tensors.count) tensors")
        }
        return try Model(format: .gguf, version: headers[0].version, path: path, files: files,
                         metadata: headers[0].metadata.map { ($0.0, .gguf($0.1)) }, tensors: tensors)
    }
}
