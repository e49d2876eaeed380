// A worker thread of RtnPool (rtn-pool.ts): rounds the rows it is sent and sends the packed part back.
import { parentPort } from 'node:worker_threads';
import type { BlockwiseOptions } from './blockwise.js';
import { rtnPacked } from './rtn-packed.js';

parentPort!.on('message', (m: { rows: Float32Array; N: number; K: number; o: BlockwiseOptions }) => {
  try {
    const p = rtnPacked(m.rows, m.N, m.K, m.o);
    const transfer = [p.B.buffer, p.scales.buffer, ...(p.zeroPoints ? [p.zeroPoints.buffer] : [])] as ArrayBuffer[];
    parentPort!.postMessage({ ok: true, p }, transfer);
  } catch (e) {
    parentPort!.postMessage({ ok: false, message: String((e as Error)?.message ?? e) });
  }
});
