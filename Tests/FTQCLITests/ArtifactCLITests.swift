import Foundation
import Testing
@testable import FTQArtifacts

/// Manifests, checksum files, `ftq hash` and `ftq verify`.
@Suite struct ArtifactCLITests {
    static func tiny(_ dir: String) throws -> String { try ConvertCLITests.tinyModel(in: dir) }

    static func sha256sumCheck(_ file: String, in dir: String) throws -> TestSupport.Result {
        try TestSupport.run("/usr/bin/env", ["sha256sum", "-c", file], cwd: dir)
    }

    static func flip(_ path: String, at offset: Int) throws {
        let fh = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        defer { try? fh.close() }
        try fh.seek(toOffset: UInt64(offset))
        let b = try fh.read(upToCount: 1)![0]
        try fh.seek(toOffset: UInt64(offset))
        try fh.write(contentsOf: [b ^ 0x01])
    }

    @Test func convertWritesManifestAndChecksumsThatCoreutilsAccepts() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let src = try Self.tiny(dir)
        try FileManager.default.createDirectory(atPath: dir + "/out", withIntermediateDirectories: true)
        var r = try TestSupport.ftq(["convert", src, "-o", dir + "/out/m.gguf", "--dtype", "f16"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(ConvertCLITests.files(dir + "/out") == ["m.gguf", "m.gguf.manifest.json", "m.gguf.sha256"])
        r = try Self.sha256sumCheck("m.gguf.sha256", in: dir + "/out")
        #expect(r.status == 0 && r.stdout.contains("m.gguf: OK") && r.stdout.contains("m.gguf.manifest.json: OK"), "\(r.stdout)\(r.stderr)")
        // The manifest: schema, relative paths, tensor digests equal to `ftq hash --tensors`.
        let m = try Manifest.parse(Array(try Data(contentsOf: URL(fileURLWithPath: dir + "/out/m.gguf.manifest.json"))))
        #expect(m.command == ["ftq", "convert", "../tiny/model.safetensors", "-o", "m.gguf", "--dtype", "f16"])
        #expect(m.inputs.map(\.path) == ["../tiny/model.safetensors"])
        #expect(m.outputs.count == 1 && m.outputs[0].path == "m.gguf" && m.outputs[0].tensors.count == 12)
        let h = try TestSupport.ftq(["hash", "--tensors", dir + "/out/m.gguf"])
        let lines = h.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 12)
        for t in m.outputs[0].tensors {
            #expect(lines.contains("\(t.sha256)  \(dir)/out/m.gguf:\(t.name)"), "\(t.name)")
        }
        // The whole-file digest agrees with coreutils and with `ftq hash`.
        let coreutils = try TestSupport.run("/usr/bin/env", ["sha256sum", dir + "/out/m.gguf"])
        let ours = try TestSupport.ftq(["hash", dir + "/out/m.gguf"])
        #expect(ours.stdout == coreutils.stdout)
        #expect(coreutils.stdout.hasPrefix(m.outputs[0].sha256 + "  "))
        #expect(m.inputs[0].sha256 == (try TestSupport.run("/usr/bin/env", ["sha256sum", src]).stdout.prefix(64)).description)
    }

    @Test func directoryOutputsCarryManifestAndSHA256SUMS() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let src = try Self.tiny(dir)
        let out = dir + "/hf"
        var r = try TestSupport.ftq(["convert", src, "-o", out, "--max-shard-size", "20KB"])
        #expect(r.status == 0, "\(r.stderr)")
        let names = ConvertCLITests.files(out)
        #expect(names.contains("ftq-manifest.json") && names.contains("SHA256SUMS") && names.contains("model.safetensors.index.json"))
        r = try Self.sha256sumCheck("SHA256SUMS", in: out)
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.split(separator: "\n").count == names.count - 1)  // every file but SHA256SUMS itself
        r = try TestSupport.ftq(["verify", out])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        // A deleted shard, an added file: both named, exit 1.
        let shard = names.first { $0.hasPrefix("model-00002") }!
        try FileManager.default.removeItem(atPath: out + "/" + shard)
        FileManager.default.createFile(atPath: out + "/notes.txt", contents: Data("x".utf8))
        r = try TestSupport.ftq(["verify", out])
        #expect(r.status == 1)
        #expect(r.stdout.contains("MISSING  \(shard)") && r.stdout.contains("EXTRA    notes.txt"), "\(r.stdout)")
        // JSON says the same.
        r = try TestSupport.ftq(["verify", out, "--json"])
        let doc = try JSONSerialization.jsonObject(with: r.stdoutData) as! [String: Any]
        #expect(doc["ok"] as? Bool == false)
        #expect((doc["extra"] as? [String]) == ["notes.txt"])
        // `verify` on the SHA256SUMS file alone also sees the missing shard.
        r = try TestSupport.ftq(["verify", out + "/SHA256SUMS"])
        #expect(r.status == 1 && r.stdout.contains("MISSING  \(shard)"))
    }

    /// Every single flipped byte of an artifact is detected, and the report names the tensor
    /// whose data holds it, or says that the bytes outside tensor data differ.
    @Test(arguments: ["m.gguf", "m.safetensors"])
    func everyFlippedByteIsFoundAndLocated(_ name: String) throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        // A small model: 2 tensors with padding between them in GGUF.
        let header = #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"b":{"dtype":"F16","shape":[5],"data_offsets":[12,22]}}"#
        let st: [UInt8] = withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian, Array.init) + Array(header.utf8) + (0..<22).map { UInt8($0) }
        FileManager.default.createFile(atPath: dir + "/in.safetensors", contents: Data(st))
        let r = try TestSupport.ftq(["convert", dir + "/in.safetensors", "-o", dir + "/" + name])
        #expect(r.status == 0, "\(r.stderr)")
        let path = dir + "/" + name
        let manifestPath = path + ".manifest.json"
        let m = try Manifest.parse(Array(try Data(contentsOf: URL(fileURLWithPath: manifestPath))))
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        let verifier = Verifier(threads: 1)
        #expect(try verifier.verify(manifestPath: manifestPath).ok)
        for offset in 0..<original.count {
            try Self.flip(path, at: offset)
            let report = try verifier.verify(manifestPath: manifestPath)
            let f = report.files.first { $0.path == name }!
            #expect(f.status == .differs, "byte \(offset) not detected")
            let holder = m.outputs[0].tensors.first { offset >= $0.offset && offset < $0.offset + $0.nbytes }
            if let holder {
                #expect(f.tensorsDiffering == [holder.name] && !f.otherBytesDiffer, "byte \(offset)")
            } else {
                #expect(f.tensorsDiffering.isEmpty && f.otherBytesDiffer, "byte \(offset)")
            }
            try Self.flip(path, at: offset)
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == original)
    }

    @Test func corruptManifestsAreReported() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let src = try Self.tiny(dir)
        let out = dir + "/m.safetensors"
        #expect(try TestSupport.ftq(["convert", src, "-o", out]).status == 0)
        let mpath = out + ".manifest.json"
        let good = try Data(contentsOf: URL(fileURLWithPath: mpath))
        // Malformed JSON: exit 3, naming the manifest.
        try Data("{\"format_version\": 1,".utf8).write(to: URL(fileURLWithPath: mpath))
        var r = try TestSupport.ftq(["verify", out])
        #expect(r.status == 3 && r.stderr.contains(mpath) && r.stderr.contains("[manifest.json]"), "\(r.stderr)")
        // A schema violation: exit 3.
        var text = String(decoding: good, as: UTF8.self)
        try Data(text.replacingOccurrences(of: "\"format_version\": 1", with: "\"format_version\": 7").utf8).write(to: URL(fileURLWithPath: mpath))
        r = try TestSupport.ftq(["verify", out])
        #expect(r.status == 3 && r.stderr.contains("[manifest.version]"))
        // A flipped digit in a recorded digest: the manifest no longer matches its checksum
        // line, and the model no longer matches the manifest: exit 1, both named.
        let sha = try Manifest.parse(Array(good)).outputs[0].sha256
        let flipped = String(sha.prefix(63)) + (sha.last == "0" ? "1" : "0")
        text = text.replacingOccurrences(of: "\"sha256\": \"\(sha)\"", with: "\"sha256\": \"\(flipped)\"")
        try Data(text.utf8).write(to: URL(fileURLWithPath: mpath))
        r = try TestSupport.ftq(["verify", out])
        #expect(r.status == 1)
        #expect(r.stdout.contains("FAILED   m.safetensors") && r.stdout.contains("FAILED   m.safetensors.manifest.json"), "\(r.stdout)")
    }

    @Test func existingManifestIsRefusedWithoutForce() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let src = try Self.tiny(dir)
        FileManager.default.createFile(atPath: dir + "/m.gguf.sha256", contents: Data("keep".utf8))
        var r = try TestSupport.ftq(["convert", src, "-o", dir + "/m.gguf"])
        #expect(r.status == 2 && r.stderr.contains("m.gguf.sha256"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/m.gguf"))
        r = try TestSupport.ftq(["convert", src, "-o", dir + "/m.gguf", "--force"])
        #expect(r.status == 0)
        #expect(try TestSupport.ftq(["verify", dir + "/m.gguf"]).status == 0)
    }

    /// Same input and options: the same bytes, whatever --threads and the working directory.
    @Test func outputsAndManifestsAreDeterministic() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        _ = try Self.tiny(dir)
        var trees: [[String: Data]] = []
        for (k, (threads, cwd)) in [("1", dir), ("2", dir + "/tiny"), ("7", "/")].enumerated() {
            let out = dir + "/run\(k)"
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            for (o, extra) in [("m.gguf", ["--dtype", "f16"]), ("hf", ["--max-shard-size", "30KB"])] {
                let r = try TestSupport.ftq(["convert", dir + "/tiny/model.safetensors", "-o", out + "/" + o, "--threads", threads] + extra, cwd: cwd)
                #expect(r.status == 0, "\(r.stderr)")
            }
            var tree: [String: Data] = [:]
            for name in ConvertCLITests.files(out) + ConvertCLITests.files(out + "/hf").map({ "hf/" + $0 }) where name != "hf" {
                tree[name] = try Data(contentsOf: URL(fileURLWithPath: out + "/" + name))
            }
            trees.append(tree)
        }
        #expect(trees[0].count == 3 + ConvertCLITests.files(dir + "/run0/hf").count)
        #expect(trees[0] == trees[1] && trees[1] == trees[2])
        let manifest = String(decoding: trees[0]["m.gguf.manifest.json"]!, as: UTF8.self)
        #expect(!manifest.contains(dir) && !manifest.contains("\"/"))
    }

    @Test func hashMatchesSha256sumForSeveralFilesAndDirectories() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        _ = try Self.tiny(dir)
        FileManager.default.createFile(atPath: dir + "/odd name\\with\nnewline", contents: Data("x".utf8))
        let r = try TestSupport.ftq(["hash", dir + "/tiny/model.safetensors", dir + "/tiny", dir + "/odd name\\with\nnewline", "--threads", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        let c = try TestSupport.run("/usr/bin/env", ["sha256sum", dir + "/tiny/model.safetensors", dir + "/tiny/config.json",
                                                      dir + "/tiny/model.safetensors", dir + "/odd name\\with\nnewline"])
        #expect(r.stdout == c.stdout)
        let j = try TestSupport.ftq(["hash", "--json", dir + "/tiny/config.json"])
        let doc = try JSONSerialization.jsonObject(with: j.stdoutData) as! [String: Any]
        #expect(((doc["files"] as! [[String: Any]])[0]["sha256"] as! String) == String(c.stdout.split(separator: "\n")[1].prefix(64)))
        #expect(try TestSupport.ftq(["hash", dir + "/missing"]).status == 4)
    }

    @Test func keptFilesAreListedAndMissingChecksumFilesReported() throws {
        let dir = try TestSupport.tempDir()
        defer { TestSupport.cleanup(dir) }
        let src = try Self.tiny(dir)
        let out = dir + "/hf"
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: out + "/config.json", contents: Data("{}".utf8))
        FileManager.default.createFile(atPath: out + "/model-00009-of-00009.safetensors", contents: Data("stale".utf8))
        var r = try TestSupport.ftq(["convert", src, "-o", out, "--force", "--dtype", "float16"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!r.stdout.contains("config.json"))  // kept, not written
        #expect(!FileManager.default.fileExists(atPath: out + "/model-00009-of-00009.safetensors"))
        let m = try Manifest.parse(Array(try Data(contentsOf: URL(fileURLWithPath: out + "/ftq-manifest.json"))))
        #expect(m.outputs.map(\.path).sorted() == ["config.json", "model.safetensors"])
        #expect(m.command.suffix(2) == ["--dtype", "f16"])  // one canonical spelling
        r = try TestSupport.ftq(["verify", out])
        #expect(r.status == 0, "\(r.stdout)")
        #expect(try Self.sha256sumCheck("SHA256SUMS", in: out).status == 0)
        // A changed kept file is damage too; a deleted checksum file is reported.
        FileManager.default.createFile(atPath: out + "/config.json", contents: Data("{ }".utf8))
        try FileManager.default.removeItem(atPath: out + "/SHA256SUMS")
        r = try TestSupport.ftq(["verify", out])
        #expect(r.status == 1)
        #expect(r.stdout.contains("FAILED   config.json") && r.stdout.contains("MISSING  SHA256SUMS"), "\(r.stdout)")
    }
}
