import FTQArtifacts

enum LinkedLibrariesInfo {
    static var openSSL: String { LinkedLibraries.openSSL }
    static var zstd: String { LinkedLibraries.zstd }
}
