import type { EvalTarget } from '@alki/eval';
import type { Bundle } from './read.js';

/** Short label of a bundle's quantization: "fp32", "rtn int4", "rtn int8 b128". */
export function quantizationLabel(q: { method: string; bits: number; groupSize?: number | null }): string {
  if (q.method === 'none') return 'fp32';
  if (q.method === 'smoothquant') return 'smoothquant w8a8';
  return `${q.method} int${q.bits}${q.groupSize && q.groupSize !== 32 ? ` b${q.groupSize}` : ''}`;
}

/** What @alki/eval needs to measure a bundle. */
export function bundleEvalTarget(b: Pick<Bundle, 'dir' | 'modelPath' | 'manifest'>, name?: string): EvalTarget {
  const m = b.manifest;
  return {
    name: name ?? quantizationLabel(m.quantization),
    dir: b.dir,
    modelPath: b.modelPath,
    method: m.quantization.method,
    bits: m.quantization.bits,
    blockSize: m.quantization.groupSize,
    modelBytes: m.metrics.modelBytes.value,
    bundleBytes: m.metrics.sizeBytes.value,
  };
}
