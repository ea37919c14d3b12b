/// The one error type every ftq library throws.
///
/// `kind` decides the process exit code (see ``FTQError/Kind``); `code` is a stable,
/// dotted identifier of the exact rule that failed (`safetensors.duplicate-key`,
/// `gguf.tensor-out-of-bounds`, ...), cited by the specifications in `formats/`
/// and checked by the tests; `message` is one line a person can act on.
public struct FTQError: Error, CustomStringConvertible, Equatable, Sendable {
    /// What went wrong, at the level a script cares about.
    public enum Kind: Sendable, Equatable {
        /// A check that the user asked for failed (verify, compare). Exit 1.
        case checkFailed
        /// The command line is wrong: unknown option, missing argument, conflicting options. Exit 2.
        case usage
        /// An input file is malformed, truncated or of a kind ftq does not support. Exit 3.
        case invalidInput
        /// The file system failed: a missing file, a permission, a full disk. Exit 4.
        case io

        /// The documented process exit status for this kind of error.
        public var exitCode: Int32 {
            switch self {
            case .checkFailed: return 1
            case .usage: return 2
            case .invalidInput: return 3
            case .io: return 4
            }
        }
    }

    public var kind: Kind
    /// A stable identifier of the rule that failed, e.g. `safetensors.duplicate-key`.
    public var code: String
    /// The file the error is about, as the user named it, if any.
    public var file: String?
    /// One line: what is wrong and, where it helps, what to do.
    public var message: String

    public init(_ kind: Kind, _ code: String, file: String? = nil, _ message: String) {
        self.kind = kind
        self.code = code
        self.file = file
        self.message = message
    }

    /// Returns a copy naming `file`, unless the error already names one.
    public func inFile(_ path: String) -> FTQError {
        var copy = self
        if copy.file == nil { copy.file = path }
        return copy
    }

    /// One line: `FILE: message [code]`, with control characters escaped so that a name
    /// from a hostile file can neither break the line nor send terminal escapes.
    public var description: String {
        let text = file.map { "\($0): \(message)" } ?? message
        return TerminalText.escaped(text, limit: 2000) + " [\(code)]"
    }

    // Convenience constructors, one per kind.
    public static func invalid(_ code: String, file: String? = nil, _ message: String) -> FTQError {
        FTQError(.invalidInput, code, file: file, message)
    }
    public static func io(_ code: String, file: String? = nil, _ message: String) -> FTQError {
        FTQError(.io, code, file: file, message)
    }
    public static func usage(_ code: String, _ message: String) -> FTQError {
        FTQError(.usage, code, message)
    }
}
