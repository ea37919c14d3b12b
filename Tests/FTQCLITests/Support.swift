import Foundation
import Testing

/// Shared helpers for tests that run the built `ftq` binary and the Python peers.
enum TestSupport {
    /// The repository root (from this file's path).
    static let repoRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func testdata(_ rel: String) -> String { repoRoot.appendingPathComponent("testdata/" + rel).path }
    static func tool(_ rel: String) -> String { repoRoot.appendingPathComponent("tools/" + rel).path }

    /// The `ftq` executable built beside this test bundle.
    static let ftqBinary: String = {
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return exe.deletingLastPathComponent().appendingPathComponent("ftq").path
    }()

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        var stdoutData: Data
    }

    /// Runs a program to completion, capturing its output.
    @discardableResult
    static func run(_ executable: String, _ args: [String], cwd: String? = nil) throws -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        // Read both pipes concurrently so that neither can fill and block the child.
        final class Box: @unchecked Sendable { var data = Data() }
        let errBox = Box()
        let group = DispatchGroup()
        group.enter()
        let errHandle = err.fileHandleForReading
        DispatchQueue.global().async {
            errBox.data = errHandle.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        let errData = errBox.data
        p.waitUntilExit()
        return Result(status: p.terminationStatus,
                      stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self),
                      stdoutData: outData)
    }

    /// Runs `ftq ARGS`.
    @discardableResult
    static func ftq(_ args: [String], cwd: String? = nil) throws -> Result {
        try run(ftqBinary, args, cwd: cwd)
    }

    /// Runs `python3 SCRIPT ARGS` (the interop peers are installed by tools/test.sh).
    @discardableResult
    static func python(_ script: String, _ args: [String]) throws -> Result {
        try run("/usr/bin/env", ["python3", script] + args)
    }

    /// A fresh empty directory, removed by the caller with `cleanup`.
    static func tempDir(_ label: String = "ftq-test") throws -> String {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("\(label)-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func cleanup(_ path: String) { try? FileManager.default.removeItem(atPath: path) }
}
