import Foundation
import Testing

@Suite struct CLIBasicsTests {
    @Test func versionNamesLinkedLibraries() throws {
        let r = try TestSupport.ftq(["version"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("ftq "))
        #expect(r.stdout.contains("libcrypto: OpenSSL"))
        #expect(r.stdout.contains("libzstd: 1."))
    }

    @Test func helpDocumentsExitCodes() throws {
        let r = try TestSupport.ftq(["--help"])
        #expect(r.status == 0)
        for line in ["0  success", "2  usage error", "3  invalid or unsupported input file", "4  I/O error"] {
            #expect(r.stdout.contains(line))
        }
    }

    @Test func unknownOptionIsUsageError() throws {
        let r = try TestSupport.ftq(["inspect", "--bogus", "x"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("--bogus"))
    }

    @Test func missingFileIsIOError() throws {
        let r = try TestSupport.ftq(["inspect", "/nonexistent/model.safetensors"])
        #expect(r.status == 4)
        #expect(r.stderr.contains("/nonexistent/model.safetensors"))
    }
}
