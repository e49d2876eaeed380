import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readModelFile, writeModelFile } from '@alki/onnx';
import { DecoderSession } from '@alki/runtime';
import { buildBundle, readBundle } from '../src/index.js';
import { tempDir, tinyLlama, tinyStoriesText } from '../../../tools/fixtures/index.js';

const t = tempDir('alki-onnx-source-');
const model = tinyLlama({ numLayers: 2, seed: 41 });
const onnxDir = join(t.dir, 'onnx-only');
afterAll(() => {
  t.cleanup();
  model.cleanup();
});

/** Logits of a bundle's graph for a fixed prompt. */
async function logits(dir: string): Promise<Float32Array> {
  const b = readBundle(dir);
  const s = await DecoderSession.load(join(dir, b.manifest.model.path), { threads: 1 });
  try {
    return (await s.forward([[1, 17, 93, 140, 7]], s.emptyCache(1), 0)).logits;
  } finally {
    await s.release();
  }
}

describe('ONNX-only sources (the transformers.js / Optimum layout: onnx/model.onnx, no safetensors)', () => {
  beforeAll(async () => {
    // A foreign export: the float graph of an fp32 build, without Alki's metadata, weights in external data.
    const fp32 = join(t.dir, 'fp32');
    await buildBundle({ modelDir: model.dir, out: fp32, quantize: { method: 'none' }, testRun: false });
    mkdirSync(join(onnxDir, 'onnx'), { recursive: true });
    for (const f of readdirSync(fp32)) if (f.endsWith('.json') && f !== 'alki.json') copyFileSync(join(fp32, f), join(onnxDir, f));
    const graph = readModelFile(join(fp32, 'onnx', 'model.onnx'));
    for (const k of Object.keys(graph.metadata)) if (k.startsWith('alki.')) delete graph.metadata[k];
    writeModelFile(join(onnxDir, 'onnx', 'model.onnx'), graph, { externalData: 'always' });
    expect(existsSync(join(onnxDir, 'onnx', 'model.onnx_data'))).toBe(true);
  });

  it('RTN int4 of the graph as it is: a bundle whose logits match the bundle built from the safetensors', async () => {
    const out = join(t.dir, 'rtn-onnx');
    const r = await buildBundle({ modelDir: onnxDir, out, sourceId: 'acme/tiny-onnx', quantize: { method: 'rtn', bits: 4, blockSize: 32 } });
    expect(r.manifest.source.id).toBe('acme/tiny-onnx');
    expect(r.manifest.quantization.quantizedLayers).toBe(r.report.layers.length);
    const fromSafetensors = join(t.dir, 'rtn-st');
    const st = await buildBundle({ modelDir: model.dir, out: fromSafetensors, quantize: { method: 'rtn', bits: 4, blockSize: 32 }, testRun: false });
    expect(r.report.layers.map((l) => l.name)).toEqual(st.report.layers.map((l) => l.name));
    const [a, b] = [await logits(out), await logits(fromSafetensors)];
    let maxDiff = 0;
    for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
    expect(maxDiff).toBeLessThan(1e-3);
  });

  it('GPTQ calibrates the foreign graph on text (as one piece: it has no layer boundaries)', async () => {
    const out = join(t.dir, 'gptq-onnx');
    const r = await buildBundle({
      modelDir: onnxDir,
      out,
      quantize: { method: 'gptq', bits: 4, blockSize: 32 },
      calibration: { path: tinyStoriesText!, samples: 4, seqLen: 32 },
    });
    expect(r.manifest.quantization.calibration?.source).toMatch(/tinystories/i);
    expect(r.report.layers.length).toBe(readBundle(join(t.dir, 'rtn-onnx')).manifest.quantization.quantizedLayers);
    expect(Number.isFinite((await logits(out))[0])).toBe(true);
  });

  it('without --calib, calibration text is sampled from the source graph itself', async () => {
    const r = await buildBundle({
      modelDir: onnxDir,
      out: join(t.dir, 'awq-onnx'),
      quantize: { method: 'awq', bits: 4, blockSize: 32 },
      calibration: { samples: 2, seqLen: 16 },
    });
    expect(r.manifest.quantization.calibration?.source).toMatch(/sampled from the source ONNX graph/);
  });
});
