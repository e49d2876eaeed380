import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildBundle } from '../src/index.js';
import { tempDir, tinyLlama, tinyStoriesText } from '../../../tools/fixtures/index.js';

const t = tempDir('alki-resume-');
const model = tinyLlama({ numLayers: 4, seed: 31 });
afterAll(() => {
  t.cleanup();
  model.cleanup();
});

/** The bytes of a bundle's graph files. */
const graphBytes = (dir: string) =>
  readdirSync(join(dir, 'onnx'))
    .sort()
    .map((f) => [f, readFileSync(join(dir, 'onnx', f))] as const);

describe('--resume', () => {
  for (const method of ['gptq', 'awq'] as const) {
    it(`${method}: a build interrupted after layer 1 restarts at layer 2 and writes the same bytes as an uninterrupted one`, async () => {
      const cacheDir = join(t.dir, `cache-${method}`);
      const common = {
        modelDir: model.dir,
        quantize: { method, bits: 4 as const, blockSize: 32 },
        calibration: { path: tinyStoriesText!, samples: 4, seqLen: 64 },
        cacheDir,
      };
      const whole = join(t.dir, `${method}-whole`);
      await buildBundle({ ...common, out: join(t.dir, `${method}-whole`) });
      const checkpoints = () => (existsSync(join(cacheDir, 'checkpoints')) ? readdirSync(join(cacheDir, 'checkpoints')) : []);
      expect(checkpoints()).toEqual([]); // removed on success

      const out = join(t.dir, `${method}-resumed`);
      const stop = new AbortController();
      const step = `${method} calibrate`;
      await expect(
        buildBundle({ ...common, out, signal: stop.signal, onProgress: (e) => e.step === step && e.done === 2 && stop.abort() }),
      ).rejects.toMatchObject({ code: 'ABORTED' });
      expect(existsSync(out)).toBe(false);
      expect(readdirSync(join(cacheDir, 'checkpoints'))).toHaveLength(1);

      const seen: number[] = [];
      await buildBundle({ ...common, out, resume: true, onProgress: (e) => e.step === step && seen.push(e.done) });
      expect(seen[0]).toBe(2); // layers 0 and 1 were not calibrated again
      expect(graphBytes(out).map(([f]) => f)).toEqual(graphBytes(whole).map(([f]) => f));
      for (const [[, a], [, b]] of graphBytes(out).map((x, i) => [x, graphBytes(whole)[i]] as const)) expect(a.equals(b)).toBe(true);
      expect(checkpoints()).toEqual([]);
    });
  }

  it('without --resume, a recorded checkpoint is replaced, and other options never resume it', async () => {
    const cacheDir = join(t.dir, 'cache-other');
    const common = { modelDir: model.dir, calibration: { path: tinyStoriesText!, samples: 4, seqLen: 64 }, cacheDir };
    const stop = new AbortController();
    await expect(
      buildBundle({
        ...common,
        quantize: { method: 'gptq', bits: 4 },
        out: join(t.dir, 'o1'),
        signal: stop.signal,
        onProgress: (e) => e.step === 'gptq calibrate' && e.done === 1 && stop.abort(),
      }),
    ).rejects.toMatchObject({ code: 'ABORTED' });
    const seen: number[] = [];
    // Another block size: another checkpoint, so this build starts from layer 0.
    await buildBundle({
      ...common,
      quantize: { method: 'gptq', bits: 4, blockSize: 16 },
      out: join(t.dir, 'o2'),
      resume: true,
      onProgress: (e) => e.step === 'gptq calibrate' && seen.push(e.done),
    });
    expect(seen[0]).toBe(0);
    seen.length = 0;
    await buildBundle({
      ...common,
      quantize: { method: 'gptq', bits: 4 },
      out: join(t.dir, 'o3'),
      onProgress: (e) => e.step === 'gptq calibrate' && seen.push(e.done),
    });
    expect(seen[0]).toBe(0);
  });
});
