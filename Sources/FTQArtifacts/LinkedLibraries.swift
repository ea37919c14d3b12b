import COpenSSL
import CZstd

/// Versions of the system libraries ftq is linked against (shown by `ftq version`).
public enum LinkedLibraries {
    public static var openSSL: String { String(cString: OpenSSL_version(OPENSSL_VERSION)) }
    public static var zstd: String { String(cString: ZSTD_versionString()) }
}
