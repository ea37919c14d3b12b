import Foundation
import FTQCore
import FTQPlan

/// Shared helpers for the planning tests.
enum PlanTestSupport {
    static let repoRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func testdata(_ rel: String) -> String { repoRoot.appendingPathComponent("testdata/" + rel).path }

    /// A model from one of the published configs in testdata/plan/.
    static func published(_ name: String) throws -> PlanModel {
        try PlanModel.load(testdata("plan/\(name).json"))
    }

    static let GB = 1e9
    static let GiB = 1_073_741_824.0
}
