import { instantiateKernels, type KernelExports } from './simd/kernels.js';

/**
 * WebAssembly's 32-bit memories end at 65,536 pages of 64 KiB (4 GiB); one page less, so that the kernels' end
 * addresses (32-bit sums) cannot wrap to 0.
 */
const MAX_PAGES = 65535;
const PAGE_FLOATS = 65536 / 4;

/** An empty growable WebAssembly memory, or undefined where the system would not reserve one. */
function newMemory(): WebAssembly.Memory | undefined {
  try {
    return new WebAssembly.Memory({ initial: 0, maximum: MAX_PAGES });
  } catch {
    return undefined;
  }
}

/**
 * Work memory kept between calls: one growing buffer handed out as a stack of sub-arrays. Callers that quantize
 * layer after layer pass the same one (fresh memory is slow to touch: see slice-sessions.ts). The buffer is a
 * WebAssembly memory, so that the SIMD kernels (simd/kernels.ts) work on what it hands out; a request past
 * WebAssembly's 4 GiB gets plain memory, for which {@link simd} answers undefined (callers then run their JS loops).
 */
export class Scratch {
  private memory = newMemory();
  private buf = new Float32Array(this.memory?.buffer ?? new ArrayBuffer(0));
  private top = 0;
  private kernels: KernelExports | undefined;

  /**
   * Makes room for `length` floats above the current top (only while nothing is taken). A request the WebAssembly
   * memory cannot grow to gets plain memory for itself (without SIMD); later, smaller ones go back to the memory.
   */
  reserve(length: number): void {
    if (this.top !== 0) throw new Error('Scratch.reserve while buffers are taken');
    const m = this.memory;
    if (m) {
      const pages = Math.ceil(length / PAGE_FLOATS);
      const have = m.buffer.byteLength / 65536;
      if (pages > have && pages <= MAX_PAGES) {
        try {
          m.grow(pages - have);
        } catch {
          // the system would not map that much: plain memory below
        }
      }
      if (m.buffer.byteLength / 4 >= length) {
        if (this.buf.buffer !== m.buffer) this.buf = new Float32Array(m.buffer);
        return;
      }
    }
    if (this.buf.length < length || this.buf.buffer === m?.buffer) this.buf = new Float32Array(length);
  }

  /** `length` floats (not zeroed) until {@link release}(mark). */
  take(length: number): Float32Array {
    if (this.top + length > this.buf.length) throw new Error('Scratch: reserve more before taking');
    const out = this.buf.subarray(this.top, this.top + length);
    this.top += length;
    return out;
  }

  get mark(): number {
    return this.top;
  }

  release(mark: number): void {
    this.top = mark;
  }

  /** The SIMD kernels, when every one of `arrays` was taken from this scratch's WebAssembly memory (byte offsets are then theirs). */
  simd(...arrays: Float32Array[]): KernelExports | undefined {
    if (!this.memory) return undefined;
    const buffer = this.memory.buffer;
    if (!arrays.every((a) => a.buffer === buffer)) return undefined;
    return (this.kernels ??= instantiateKernels(this.memory));
  }
}
