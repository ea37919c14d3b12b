import Dispatch

/// Runs `work` on items `0..<count` on up to `threads` threads at once and `consume` on the
/// calling thread in item order, each item with its own slot of buffers.
///
/// Item `i` uses slot `i % slots.count`; it is handed to a worker only once item
/// `i - slots.count` has been consumed, so memory is the slots, whatever `count` is. The
/// first error in item order is thrown (a later item's error never hides an earlier one),
/// after every item in flight has finished, so the slots can be freed. With one thread
/// everything runs on the calling thread.
func runOrdered<Slot: AnyObject & Sendable>(
    count: Int, threads: Int, slots: [Slot],
    work: @escaping @Sendable (_ item: Int, _ slot: Slot, _ worker: Int) throws -> Void,
    consume: (_ item: Int, _ slot: Slot) throws -> Void
) throws {
    precondition(!slots.isEmpty)
    if threads <= 1 || count <= 1 {
        for i in 0..<count {
            try work(i, slots[0], 0)
            try consume(i, slots[0])
        }
        return
    }

    let w = slots.count
    let state = PipelineState(slots: w, workers: threads)
    let limit = DispatchSemaphore(value: threads)
    let queue = DispatchQueue(label: "ftq.pack", attributes: .concurrent)

    func submit(_ i: Int) {
        let s = i % w
        let slot = slots[s]
        queue.async {
            limit.wait()
            state.lock.wait()
            let cancelled = state.cancelled
            let worker = state.freeWorkers.removeLast()
            state.lock.signal()
            var failure: Error?
            if !cancelled {
                do { try work(i, slot, worker) } catch { failure = error }
            }
            state.lock.wait()
            state.freeWorkers.append(worker)
            state.errors[s] = failure
            state.lock.signal()
            limit.signal()
            state.done[s].signal()
        }
    }

    var submitted = 0
    var waited = 0
    defer {
        // On an error: let the items in flight finish before the slots go away.
        if waited < submitted {
            state.lock.wait(); state.cancelled = true; state.lock.signal()
            while waited < submitted { state.done[waited % w].wait(); waited += 1 }
        }
    }
    while submitted < min(w, count) { submit(submitted); submitted += 1 }
    for i in 0..<count {
        state.done[i % w].wait()
        waited += 1
        state.lock.wait()
        let failure = state.errors[i % w]
        state.errors[i % w] = nil
        state.lock.signal()
        if let failure { throw failure }
        try consume(i, slots[i % w])
        if submitted < count { submit(submitted); submitted += 1 }
    }
}

/// What the workers of ``runOrdered`` share.
private final class PipelineState: @unchecked Sendable {
    var errors: [Error?]
    let done: [DispatchSemaphore]
    let lock = DispatchSemaphore(value: 1)
    var cancelled = false
    var freeWorkers: [Int]
    init(slots: Int, workers: Int) {
        errors = Array(repeating: nil, count: slots)
        done = (0..<slots).map { _ in DispatchSemaphore(value: 0) }
        freeWorkers = Array((0..<workers).reversed())
    }
}
