import Foundation
import Testing

/// A shard name in a model index that points outside the model directory is refused and the
/// file it names is never opened (formats/safetensors.md, D4; formats/cli.md, "Inputs").
///
/// The proof is a trace of every system call that takes a path (`strace -f -e trace=%file`,
/// all threads, names unabridged): the outside file must appear in none of them, while the
/// index itself must appear (so the trace saw the calls that matter). strace is installed by
/// tools/setup.sh; where it is missing or cannot trace (ptrace refused), the test records an
/// issue and so fails: it never passes without having looked.
@Suite struct ShardContainmentCLITests {
    struct Case: Sendable, CustomTestStringConvertible {
        var label: String
        /// The name the index gives the second shard.
        var shardName: String
        /// A symbolic link inside the directory, pointing outside, under `shardName`.
        var symlink: Bool
        var testDescription: String { label }
    }

    static let cases: [Case] = [
        Case(label: "../outside.safetensors", shardName: "../outside.safetensors", symlink: false),
        Case(label: "/etc/passwd", shardName: "/etc/passwd", symlink: false),
        Case(label: "absolute path of an existing safetensors file", shardName: "ABSOLUTE", symlink: false),
        Case(label: "symbolic link to ../outside.safetensors", shardName: "model-00002-of-00002.safetensors", symlink: true),
    ]

    static let commands: [[String]] = [["inspect"], ["hash", "--tensors"], ["convert", "-o", "OUT"]]

    /// Runs `ftq ARGS` under strace: its result and the traced calls, one per line.
    static func traced(_ args: [String], log: String) throws -> (TestSupport.Result, [String])? {
        let strace = "/usr/bin/strace"
        guard FileManager.default.isExecutableFile(atPath: strace) else {
            Issue.record("\(strace) is missing (tools/setup.sh installs it): nothing was checked")
            return nil
        }
        let r = try TestSupport.run(strace, ["-f", "-qq", "-s", "65536", "-e", "trace=%file", "-o", log, "--",
                                             TestSupport.ftqBinary] + args)
        let lines = ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        guard lines.contains(where: { $0.contains("execve(") }) else {
            Issue.record("strace could not trace ftq (exit \(r.status)): \(r.stderr)")
            return nil
        }
        return (r, lines)
    }

    @Test(arguments: cases, commands)
    func outsideShardIsNeverOpened(_ c: Case, _ command: [String]) throws {
        let tmp = try TestSupport.tempDir("ftq-containment")
        defer { TestSupport.cleanup(tmp) }
        let dir = tmp + "/model"
        try FileManager.default.copyItem(atPath: TestSupport.testdata("malformed/ok_sharded"), toPath: dir)
        // A real safetensors file outside the directory, holding the tensor the index asks for.
        let outside = tmp + "/outside.safetensors"
        try FileManager.default.moveItem(atPath: dir + "/model-00002-of-00002.safetensors", toPath: outside)
        var shardName = c.shardName
        if shardName == "ABSOLUTE" { shardName = outside }
        if c.symlink {
            try FileManager.default.createSymbolicLink(atPath: dir + "/" + shardName, withDestinationPath: "../outside.safetensors")
        }
        let index = #"{"metadata": {"total_size": 16}, "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "\#(shardName)"}}"#
        try index.write(toFile: dir + "/model.safetensors.index.json", atomically: false, encoding: .utf8)

        let out = tmp + "/out.gguf"
        let args = command.count == 3 ? [command[0], dir, command[1], out] : [command[0], dir] + command.dropFirst()
        guard let (r, lines) = try Self.traced(args, log: tmp + "/trace") else { return }

        #expect(r.status == 3, "exit \(r.status): \(r.stderr)")
        #expect(r.stderr.contains("[index.shard-outside-directory]") && r.stderr.contains("refusing to open it"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out))
        // The trace saw ftq open the index.
        #expect(lines.contains { $0.contains("open") && $0.contains("model.safetensors.index.json\"") },
                "the trace does not show the index being opened:\n\(lines.joined(separator: "\n"))")

        // The outside file: its own name, and every spelling the index gives it.
        let targets = c.shardName == "/etc/passwd" ? ["\"/etc/passwd\""] : ["outside.safetensors"]
        for line in lines {
            // The call's name: the word after the process id (strace pads the id with spaces),
            // up to "(".
            let words = line.split(separator: " ", omittingEmptySubsequences: true)
            let call = words.count > 1 ? String(words[1].prefix { $0 != "(" }) : ""
            for t in targets where line.contains(t) {
                if c.symlink {
                    // Resolving the link (realpath) reads the link and the names on its way,
                    // and nothing else.
                    #expect(call == "readlink" || call == "readlinkat", "\(c.label): \(line)")
                } else {
                    #expect(Bool(false), "\(c.label): a call names the outside file: \(line)")
                }
            }
        }
    }
}
