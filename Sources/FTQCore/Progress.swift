#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Progress on stderr, only when stderr is a terminal and the user did not ask for quiet.
public final class Progress: @unchecked Sendable {
    private let enabled: Bool
    private let label: String
    private let totalBytes: Int
    private var doneBytes = 0
    private var lastDraw: UInt64 = 0

    public init(label: String, totalBytes: Int, quiet: Bool) {
        self.label = label
        self.totalBytes = totalBytes
        self.enabled = !quiet && isatty(2) != 0
    }

    /// Records `bytes` more done; redraws at most ten times a second.
    public func advance(_ bytes: Int, detail: String = "") {
        doneBytes += bytes
        guard enabled else { return }
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let now = UInt64(ts.tv_sec) * 1000 + UInt64(ts.tv_nsec) / 1_000_000
        if now - lastDraw < 100 && doneBytes < totalBytes { return }
        lastDraw = now
        let pct = totalBytes > 0 ? Int(Double(doneBytes) / Double(totalBytes) * 100) : 100
        let line = "\r\(label): \(pct)% \(ByteSize.format(doneBytes)) / \(ByteSize.format(totalBytes)) \(detail)"
        let padded = line.count < 100 ? line + String(repeating: " ", count: 100 - line.count) : line
        writeStderr(padded)
    }

    /// Clears the progress line.
    public func finish() {
        guard enabled else { return }
        writeStderr("\r" + String(repeating: " ", count: 100) + "\r")
    }
}

/// Writes text to standard error, unbuffered.
public func writeStderr(_ s: String) {
    var bytes = Array(s.utf8)
    bytes.withUnsafeMutableBytes { buf in
        var done = 0
        while done < buf.count {
            let n = write(2, buf.baseAddress! + done, buf.count - done)
            if n <= 0 { if errno == EINTR { continue }; return }
            done += n
        }
    }
}
