import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { tempDir, tinyLlama } from '../../../tools/fixtures/index.js';

// The tiny model counted as a 1B-parameter one: the path a real 1.1B model takes, at the tiny model's cost.
vi.mock('@alki/models', async (original) => ({ ...(await original<typeof import('@alki/models')>()), countParameters: () => 1e9 }));
const { buildBundle, compareMethods, parseMethods } = await import('../src/index.js');

const t = tempDir('alki-calib-size-');
const model = tinyLlama({ seed: 4 });
afterAll(() => {
  t.cleanup();
  model.cleanup();
});
const context = () => JSON.parse(readFileSync(join(model.dir, 'config.json'), 'utf8')).max_position_embeddings as number;

describe('calibration by model size', () => {
  it('a large model gets the quick recipe by default, said before the work starts', async () => {
    const events: { step: string; message?: string }[] = [];
    const r = await buildBundle({ modelDir: model.dir, out: join(t.dir, 'auto'), quantize: { method: 'gptq', bits: 4 }, onProgress: (e) => events.push(e) });
    expect(r.notes).toHaveLength(1);
    expect(r.notes[0]).toMatch(/quick recipe \(8 × \d+ tokens, plain GPTQ\) for this 1\.0B-parameter model.*--no-quick/);
    // The message comes first, before the export and the calibration data.
    expect(events[0]).toMatchObject({ step: 'note', message: r.notes[0] });
    expect(events.filter((e) => e.message)).toHaveLength(1);
    expect(r.manifest.quantization).toMatchObject({ trueSequential: false, floatTargets: false });
    expect(r.manifest.quantization.calibration).toMatchObject({ samples: 8, sequenceLength: Math.min(256, context()) });
  });

  it('--no-quick, a size of one’s own, or RTN: no automatic choice and no note', async () => {
    const full = await buildBundle({
      modelDir: model.dir,
      out: join(t.dir, 'full'),
      quantize: { method: 'gptq', bits: 4 },
      calibration: { quick: false, samples: 2 },
    });
    expect(full.notes).toEqual([]);
    expect(full.manifest.quantization).toMatchObject({ trueSequential: true, floatTargets: true });
    const sized = await buildBundle({ modelDir: model.dir, out: join(t.dir, 'sized'), quantize: { method: 'awq', bits: 4 }, calibration: { samples: 2 } });
    expect(sized.notes).toEqual([]);
    expect(sized.manifest.quantization.calibration).toMatchObject({ samples: 2, sequenceLength: Math.min(512, context()) });
    const rtn = await buildBundle({ modelDir: model.dir, out: join(t.dir, 'rtn'), quantize: { method: 'rtn', bits: 4 } });
    expect(rtn.notes).toEqual([]);
  });

  it('compare reuses a bundle only when its calibration is what the build would now make', async () => {
    const out = join(t.dir, 'cmp');
    const first = await compareMethods({ modelDir: model.dir, out, methods: parseMethods('awq4'), metrics: ['size'], calibration: { samples: 8, seqLen: 16 } });
    const before = readFileSync(join(out, 'awq4', 'alki.json'), 'utf8');
    expect(first.bundles[1].manifest.quantization.calibration).toMatchObject({ samples: 8, sequenceLength: 16 });
    // The same 8 samples, but the automatic quick recipe's length: rebuilt, not reused.
    const second = await compareMethods({ modelDir: model.dir, out, methods: parseMethods('awq4'), metrics: ['size'] });
    expect(second.notes).toHaveLength(1);
    expect(second.bundles[1].manifest.quantization.calibration).toMatchObject({ samples: 8, sequenceLength: Math.min(256, context()) });
    expect(readFileSync(join(out, 'awq4', 'alki.json'), 'utf8')).not.toBe(before);
    // And the same again: reused.
    const third = await compareMethods({ modelDir: model.dir, out, methods: parseMethods('awq4'), metrics: ['size'] });
    expect(third.notes).toEqual([]);
  });
});
