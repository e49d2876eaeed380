import { GarbageMeter } from '@alki/core/node';

/**
 * onnxruntime-node backs each run's outputs (and a copy of bound outputs)
 * with native memory that V8 does not account for, so it is freed only when
 * a garbage collection happens to finalize the JS wrappers. A loop of runs
 * with large outputs and little JS allocation therefore takes fresh memory
 * on every run, and touching fresh memory costs a page fault per 4 KB (13 µs
 * each on the 2-core VM: 75 ms for one 22 MB GEMM output that computes in 9).
 * Callers report the bytes their runs returned; past a threshold a young
 * generation collection (~3 ms) frees the wrappers and the allocator reuses
 * the warm memory — when the host process enabled collections
 * (enableGarbageCollection from @alki/core/node, as the CLI does; a library
 * does not flip that process-wide switch itself).
 */
const meter = new GarbageMeter(16 * 1024 * 1024, 'minor');

/** Records `bytes` of onnxruntime outputs handed to JS; collects the young generation once enough has piled up. */
export function noteOrtOutput(bytes: number): void {
  meter.note(bytes);
}
