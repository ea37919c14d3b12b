/// A running digest of a byte stream (SHA-256 in practice: FTQArtifacts' `SHA256Hasher`).
///
/// Declared here so that writers can hash what they write without depending on a crypto
/// library: the caller passes a ``DigestMaker`` and gets the hex digests back.
public protocol StreamDigest: AnyObject {
    func update(_ bytes: UnsafeRawBufferPointer)
    /// Feeds the same bytes to this digest and to `other` (an implementation may hash both
    /// streams in one pass).
    func update(_ bytes: UnsafeRawBufferPointer, alongWith other: StreamDigest)
    /// The digest as lowercase hex; the digest cannot be updated afterwards.
    func finalizeHex() -> String
}

extension StreamDigest {
    public func update(_ bytes: UnsafeRawBufferPointer, alongWith other: StreamDigest) {
        update(bytes)
        other.update(bytes)
    }
}

/// Makes a fresh digest.
public typealias DigestMaker = @Sendable () -> StreamDigest
