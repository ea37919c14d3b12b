import FTQCore

/// Checksum files in the format of coreutils' `sha256sum` (formats/manifest.md, "Checksum
/// files"): one line per file, `<64 hex digits><space><space><name>`; a name holding a
/// backslash, a line feed or a carriage return is written escaped (`\\`, `\n`, `\r`) on a line
/// that starts with a backslash. `sha256sum -c FILE` checks them with coreutils alone.
public enum ChecksumList {
    public struct Entry: Sendable, Equatable {
        public var sha256: String
        public var path: String
        public init(sha256: String, path: String) { self.sha256 = sha256; self.path = path }
    }

    /// The text of a checksum file.
    public static func format(_ entries: [Entry]) -> [UInt8] {
        var out: [UInt8] = []
        for e in entries {
            let needsEscape = e.path.utf8.contains { $0 == 0x5c || $0 == 0x0a || $0 == 0x0d }
            if needsEscape { out.append(0x5c) }
            out += Array(e.sha256.utf8) + [0x20, 0x20]
            for b in e.path.utf8 {
                if needsEscape && b == 0x5c { out += [0x5c, 0x5c] }
                else if needsEscape && b == 0x0a { out += [0x5c, 0x6e] }
                else if needsEscape && b == 0x0d { out += [0x5c, 0x72] }
                else { out.append(b) }
            }
            out.append(0x0a)
        }
        return out
    }

    /// Parses a checksum file (text or binary mode markers, escaped names). Errors have code
    /// `checksums.syntax` and name the line.
    public static func parse(_ data: [UInt8]) throws -> [Entry] {
        var entries: [Entry] = []
        var lineNo = 0
        for raw in data.split(separator: 0x0a, omittingEmptySubsequences: false) {
            lineNo += 1
            var line = Array(raw)
            if line.last == 0x0d { line.removeLast() }
            if line.isEmpty { continue }
            func fail(_ why: String) -> FTQError { FTQError.invalid("checksums.syntax", "line \(lineNo): \(why)") }
            var escaped = false
            if line.first == 0x5c { escaped = true; line.removeFirst() }
            guard line.count >= 66 else { throw fail("too short for a SHA-256 line") }
            let hex = line[0..<64]
            guard hex.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) || (0x41...0x46).contains($0) }) else {
                throw fail("the digest is not 64 hex digits")
            }
            guard line[64] == 0x20, line[65] == 0x20 || line[65] == 0x2a else { throw fail("expected two spaces (or \" *\") after the digest") }
            var name: [UInt8] = []
            var k = 66
            while k < line.count {
                let b = line[k]
                if escaped && b == 0x5c {
                    guard k + 1 < line.count else { throw fail("a name ends with a lone backslash") }
                    switch line[k + 1] {
                    case 0x5c: name.append(0x5c)
                    case 0x6e: name.append(0x0a)
                    case 0x72: name.append(0x0d)
                    default: throw fail("unknown escape in the name")
                    }
                    k += 2
                    continue
                }
                name.append(b)
                k += 1
            }
            guard !name.isEmpty, let path = String(validating: name, as: UTF8.self) else { throw fail("the name is empty or not UTF-8") }
            entries.append(Entry(sha256: String(decoding: hex, as: UTF8.self).lowercased(), path: path))
        }
        return entries
    }
}
