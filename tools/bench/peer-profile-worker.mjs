// Where an Alki bundle's time goes (pnpm bench:peer): one process per bundle runs the speed loop's prefill and
// decode through @alki/runtime's Decoder on a session with onnxruntime's profiler on, and prints one JSON line:
// per-op kernel time of the prefill and of a decode step, the wall time of a step against onnxruntime's own
// model_run and its kernels (the time outside kernels), the bytes a decode step reads (every initializer but the
// embedding table, of which a step reads one row) and the read bandwidth an onnxruntime kernel gets in the same
// process (an fp32 matrix-vector product over 512 MB, 2 threads as the bundles).
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { DataType, GraphBuilder, createModel, elementSize, encodeModel, floatTensor, numel, readModelFile } from '@alki/onnx';
import { Decoder, argmax, cacheUpdatedInPlace } from '@alki/runtime';

const [modelPath, json] = process.argv.slice(2);
const o = JSON.parse(json);
const session = (path, extra = {}) =>
  ort.InferenceSession.create(path, {
    intraOpNumThreads: o.threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    extra: { session: { qdq_matmulnbits_accuracy_level: '0' } },
    ...extra,
  });

/** GB/s of an fp32 [1, K] × [K, N] product over a 512 MB weight: the read bandwidth a kernel reaches here. */
async function readBandwidth() {
  const K = 2048;
  const N = 65536;
  const b = new GraphBuilder('bandwidth');
  const w = new Float32Array(K * N);
  for (let i = 0; i < w.length; i++) w[i] = (((i * 2654435761) >>> 0) / 2 ** 32 - 0.5) * 0.01;
  b.input('x', DataType.FLOAT, [1, K]);
  b.initializer(floatTensor('w', [K, N], w));
  b.output(b.node('MatMul', ['x', 'w']), DataType.FLOAT, [1, N]);
  const s = await session(encodeModel(createModel(b.build(), { opsets: { '': 17 } })));
  const x = new ort.Tensor('float32', new Float32Array(K).fill(1), [1, K]);
  const times = [];
  for (let i = 0; i < 18; i++) {
    const t = performance.now();
    await s.run({ x });
    if (i >= 3) times.push(performance.now() - t);
  }
  await s.release();
  times.sort((a, c) => a - c);
  return (w.byteLength / times[Math.floor(times.length / 2)]) * 1e-6;
}

/** Bytes a decode step reads from the weights: every initializer except the tables a Gather looks rows up in. */
function bytesPerToken(path) {
  const g = readModelFile(path, { loadExternalData: false }).graph;
  const tables = new Set(g.nodes.filter((n) => n.opType === 'Gather' || n.opType === 'GatherBlockQuantized').map((n) => n.inputs[0]));
  const byName = new Map(g.initializers.map((t) => [t.name, elementSize(t.dataType) * numel(t.dims)]));
  // float16 scales behind a Cast become float32 when the session loads (halfScales): count what the kernels read.
  const halfTables = new Map(g.initializers.filter((t) => t.dataType === DataType.FLOAT16).map((t) => [t.name, t]));
  for (const n of g.nodes) {
    const t = n.opType === 'Cast' && halfTables.get(n.inputs[0]);
    if (!t) continue;
    byName.set(n.outputs[0], 4 * numel(t.dims));
    byName.delete(t.name);
  }
  // A tied table's scales (and zero points) follow its codes into the gather as inputs 1–2 as well.
  for (const n of g.nodes) if (n.opType === 'GatherBlockQuantized') n.inputs.slice(1).forEach((i) => tables.add(i));
  // Tables shared with the head are read by the head every step: count them.
  const readElsewhere = (name) => g.nodes.some((n) => n.opType !== 'Gather' && n.opType !== 'GatherBlockQuantized' && n.inputs.includes(name));
  let total = 0;
  let matmulNBits = 0;
  for (const [name, bytes] of byName) if (!tables.has(name) || readElsewhere(name)) total += bytes;
  for (const n of g.nodes) if (n.opType === 'MatMulNBits') for (const i of n.inputs.slice(1)) matmulNBits += byName.get(i) ?? 0;
  return { total, matmulNBits };
}

const bandwidthGBs = await readBandwidth();
const dir = mkdtempSync(join(tmpdir(), 'alki-profile-'));
try {
  const s = await session(modelPath, { enableProfiling: true, profileFilePrefix: join(dir, 'ort') });
  const decoder = new Decoder(s, ort.Tensor, { kvInPlace: cacheUpdatedInPlace(modelPath) });
  const V = decoder.vocabSize ?? o.vocabSize;
  const prompt = Array.from({ length: o.promptTokens }, (_, i) => 3 + ((i * 7919) % (V - 3)));
  const wall = { prefill: [], decode: [] };
  for (let r = 0; r < 2; r++) {
    let t = performance.now();
    let out = await decoder.forward([prompt], decoder.emptyCache(1, o.promptTokens + o.newTokens), 0);
    wall.prefill.push(performance.now() - t);
    let next = argmax(out.logits, (o.promptTokens - 1) * out.vocabSize, out.vocabSize);
    for (let i = 0; i < o.newTokens; i++) {
      t = performance.now();
      out = await decoder.forward([[next]], out.present, o.promptTokens + i);
      wall.decode.push(performance.now() - t);
      next = argmax(out.logits, 0, out.vocabSize);
    }
  }
  await s.endProfiling();
  const file = readdirSync(dir).find((f) => f.endsWith('.json'));
  const events = JSON.parse(readFileSync(join(dir, file), 'utf8'));
  await s.release();
  // The second round only (the first warms up): its runs are the last 1 + newTokens model_run events.
  const runs = events.filter((e) => e.name === 'model_run').sort((a, b) => a.ts - b.ts);
  const kept = runs.slice(runs.length - (1 + o.newTokens));
  const nodes = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time'));
  const phase = (rs, walls) => {
    const ops = {};
    let kernelUs = 0;
    for (const r of rs)
      for (const e of nodes)
        if (e.ts >= r.ts && e.ts <= r.ts + r.dur) {
          ops[e.args.op_name] = (ops[e.args.op_name] ?? 0) + e.dur / 1000 / rs.length;
          kernelUs += e.dur;
        }
    const runMs = rs.reduce((a, r) => a + r.dur, 0) / 1000 / rs.length;
    return { wallMs: walls.reduce((a, b) => a + b, 0) / walls.length, modelRunMs: runMs, kernelsMs: kernelUs / 1000 / rs.length, ops };
  };
  const bytes = bytesPerToken(modelPath);
  const prefill = phase(kept.slice(0, 1), wall.prefill.slice(-1));
  const decode = phase(kept.slice(1), wall.decode.slice(-o.newTokens));
  console.log(JSON.stringify({ kvInPlace: decoder.kvInPlace, bandwidthGBs, bytesPerToken: bytes.total, matMulNBitsBytes: bytes.matmulNBits, prefill, decode }));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
