/// A running digest of a byte stream (SHA-256 in practice: FTQArtifacts' `SHA256Hasher`).
///
/// Declared here so that writers can hash what they write without depending on a crypto
/// library: the caller passes a ``DigestMaker`` and gets the hex digests back.
public protocol StreamDigest: AnyObject {
    func update(_ bytes: UnsafeRawBufferPointer)
    /// The digest as lowercase hex; the digest cannot be updated afterwards.
    func finalizeHex() -> String
}

/// Makes a fresh digest.
public typealias DigestMaker = @Sendable () -> StreamDigest
