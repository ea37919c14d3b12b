#if canImport(Glibc)
import Glibc
#endif

/// Paths relative to a directory, so that manifests hold no absolute paths and read the same
/// wherever the files are moved together (formats/manifest.md, "Paths").
public enum RelativePath {
    /// The canonical absolute path of an existing directory, or nil.
    public static func canonical(_ path: String) -> String? {
        guard let r = realpath(path, nil) else { return nil }
        defer { free(r) }
        return String(cString: r)
    }

    /// The canonical absolute path of a file whose directory exists (the file need not).
    public static func canonicalFile(_ path: String) -> String? {
        let (dir, base) = splitPath(path)
        guard let d = canonical(dir.isEmpty ? "." : dir) else { return nil }
        return d == "/" ? "/" + base : d + "/" + base
    }

    /// `target` relative to the directory `from` (both resolved through symbolic links of
    /// their directories), e.g. `../models/x.safetensors`; nil when either cannot be resolved.
    public static func of(_ target: String, from dir: String) -> String? {
        let trimmed = dir.count > 1 && dir.hasByteSuffix("/") ? String(dir.dropLast()) : dir
        guard let t = canonicalFile(target), let d = canonical(trimmed.isEmpty ? "." : trimmed) ?? canonicalFile(trimmed) else { return nil }
        let tp = t.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        let dp = d.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        var common = 0
        while common < tp.count - 1, common < dp.count, ExactName(tp[common]) == ExactName(dp[common]) { common += 1 }
        let up = Array(repeating: "..", count: dp.count - common)
        return (up + tp[common...]).joined(separator: "/")
    }
}
