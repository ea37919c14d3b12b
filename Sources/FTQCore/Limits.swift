/// Every cap ftq applies to what it reads, in one place (formats/limits.md, which gives the
/// reason for each value).
///
/// Files come from the internet. Each cap is checked against the length or count a file
/// claims before anything is allocated or read for it; caps are set well above the largest
/// real files seen, so that they only refuse damaged or hostile inputs. Formats refer to these
/// values under their own names (`SafetensorsHeader.maxHeaderBytes`, ...); the tests check
/// that formats/limits.md states each of them.
public enum Limits {
    // MARK: safetensors

    /// The largest safetensors header (the `N` of the length prefix), and the largest
    /// `*.safetensors.index.json`: 256 MiB. Real headers reach 126 MB (1.29 million tensors);
    /// the reference implementation's 100,000,000 refuses those.
    public static let safetensorsHeaderBytes = 256 << 20

    // MARK: JSON

    /// Nesting of objects and arrays in any JSON document ftq parses.
    public static let jsonDepth = 64

    // MARK: GGUF

    /// Nesting of GGUF metadata arrays.
    public static let ggufArrayDepth = 4
    /// The largest `general.alignment`.
    public static let ggufMaxAlignment = 1 << 20
    /// The most dimensions of a GGUF tensor (ggml's `GGML_MAX_DIMS`).
    public static let ggufMaxDims = 4
    /// The longest GGUF key or tensor name read, in bytes (the GGUF specification's limit).
    public static let ggufKeyBytes = 65_535
    /// The largest GGUF metadata value: one string, or one array's encoded elements.
    public static let ggufValueBytes = 256 << 20
    /// The longest tensor name ftq writes into a GGUF file (ggml's 64-byte field with its NUL).
    public static let ggufWrittenNameBytes = 63

    // MARK: companions, adapters, manifests

    /// The largest companion file (config.json, tokenizer files) copied or parsed.
    public static let companionBytes = 64 << 20
    /// The largest PEFT `adapter_config.json`.
    public static let adapterConfigBytes = 1 << 20
    /// The largest LoRA rank (`r`, `rank_pattern` values).
    public static let loraRank = 65_536
    /// The largest manifest or checksum file `verify` reads.
    public static let manifestBytes = 1 << 30

    // MARK: ftq plan

    /// The largest config.json `ftq plan` reads.
    public static let planConfigBytes = 16 << 20
    /// The most parameters a config.json may describe (2^50, about a thousand times the largest
    /// models): every count planning derives from it then fits in 64-bit integers.
    public static let planParameters = 1 << 50
    /// The most layers (decoder or encoder) a config.json may describe: tensors are listed per
    /// layer, so this bounds the work before the parameter count is known.
    public static let planLayers = 1 << 16
    /// The largest KV cache per token over all layers (2 x 2 bytes x layers x KV width).
    public static let planKVBytesPerToken = 1 << 32

    // MARK: .ftqz packs

    /// The largest pack index.
    public static let packIndexBytes = 64 << 20
    /// The largest uncompressed frame of a pack.
    public static let packFrameBytes = 16 << 20
    /// The longest file name in a pack, in bytes of UTF-8.
    public static let packNameBytes = 255
}
