import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TextGenerator } from '@alki/runtime';
import { parseDecoderConfig } from '@alki/models';
import { readModelFile } from '@alki/onnx';
import { writtenBlockSize } from '@alki/quantizers';
import {
  AUTO_QUICK_PARAMETERS,
  buildBundle,
  compareMethods,
  estimateModelBytes,
  isSafeRelativePath,
  parseMethods,
  readBundle,
  resolveCalibration,
  verifyBundle,
  withQuickDefaults,
  writeDirAtomically,
} from '../src/index.js';
import { tempDir, tinyLlama } from '../../../tools/fixtures/index.js';

const t = tempDir('alki-bundle-');
const model = tinyLlama({ seed: 9 });
afterAll(() => {
  t.cleanup();
  model.cleanup();
});

describe('buildBundle', () => {
  it('writes the bundle of BUNDLE.md with every file hashed, external data included', async () => {
    const out = join(t.dir, 'ext');
    const events: string[] = [];
    const { manifest } = await buildBundle({
      modelDir: model.dir,
      out,
      quantize: { method: 'rtn', bits: 4 },
      externalData: 'always',
      onProgress: (e) => events.push(e.step),
    });
    expect(new Set(events)).toEqual(new Set(['export', 'quantize', 'write']));
    const files = manifest.files.map((f) => f.path);
    expect(files).toEqual([
      'README.md',
      'config.json',
      'generation_config.json',
      'onnx/model_q4.onnx',
      'onnx/model_q4.onnx_data',
      'special_tokens_map.json',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    expect(manifest.model.externalData).toEqual(['onnx/model_q4.onnx_data']);
    expect(manifest.quantization).toMatchObject({ method: 'rtn', bits: 4, groupSize: 32, symmetric: false });
    expect(verifyBundle(out)).toMatchObject({ ok: true, problems: [] });
    expect(readFileSync(join(out, 'README.md'), 'utf8')).toMatch(/rtn int4/);
    const gen = await TextGenerator.load(out);
    const r = await gen.generate('the cat', { maxNewTokens: 5 });
    expect(r.ids.length).toBeGreaterThan(0);
    await gen.release();
    expect(readdirSync(t.dir).filter((n) => n.includes('partial'))).toEqual([]);
  });

  it('test-runs the written model in its own process, and can skip that', async () => {
    const a = await buildBundle({ modelDir: model.dir, out: join(t.dir, 'tr1'), quantize: { method: 'rtn', bits: 4 } });
    expect(a.testRunPeakRssBytes).toBeGreaterThan(10e6); // a process of its own that loaded onnxruntime
    const b = await buildBundle({ modelDir: model.dir, out: join(t.dir, 'tr2'), quantize: { method: 'rtn', bits: 4 }, testRun: false });
    expect(b.testRunPeakRssBytes).toBe(0);
    expect(verifyBundle(join(t.dir, 'tr2')).ok).toBe(true);
  });

  it('test-runs a model whose context is shorter than the test input (the input is cut to the context)', async () => {
    const short = tinyLlama({ seed: 4 });
    try {
      const cfg = join(short.dir, 'config.json');
      writeFileSync(cfg, JSON.stringify({ ...JSON.parse(readFileSync(cfg, 'utf8')), max_position_embeddings: 3 }));
      const r = await buildBundle({ modelDir: short.dir, out: join(t.dir, 'ctx3'), quantize: { method: 'rtn', bits: 4 } });
      expect(r.testRunPeakRssBytes).toBeGreaterThan(0);
      expect(r.manifest.model.maxPositions).toBe(3);
    } finally {
      short.cleanup();
    }
  });

  it('says when the token table is not stored at the bits asked for (tied to the head; rows that do not split into blocks)', async () => {
    const tied = tinyLlama({ seed: 6, tieWordEmbeddings: true });
    const narrow = tinyLlama({ seed: 6, hiddenSize: 40, numHeads: 4, numKvHeads: 2 });
    try {
      const a = await buildBundle({ modelDir: tied.dir, out: join(t.dir, 'tied'), quantize: { method: 'rtn', bits: 4, embedBits: 4 }, testRun: false });
      expect(a.manifest.quantization.embedBits).toBe(8);
      expect(a.notes.join('\n')).toMatch(/token table: int8, not the --embed-bits 4 asked for: it is tied to the output projection/);
      const b = await buildBundle({ modelDir: narrow.dir, out: join(t.dir, 'narrow'), quantize: { method: 'rtn', bits: 4 }, testRun: false });
      expect(b.notes.join('\n')).toMatch(/token table: float32, not int4: its rows of 40 values do not split into blocks of 16 or more/);
      const c = await buildBundle({ modelDir: model.dir, out: join(t.dir, 'plain'), quantize: { method: 'rtn', bits: 4 }, testRun: false });
      expect(c.notes).toEqual([]);
    } finally {
      tied.cleanup();
      narrow.cleanup();
    }
  });

  it('estimates the weights AWQ writes for a tied model (its table the head’s 8-bit codes, read through 1/s)', async () => {
    const tied = tinyLlama({ seed: 8, tieWordEmbeddings: true });
    try {
      const out = join(t.dir, 'awq-tied');
      await buildBundle({ modelDir: tied.dir, out, quantize: { method: 'awq', bits: 4 }, calibration: { quick: true }, testRun: false });
      const manifest = readBundle(out).manifest;
      expect(manifest.quantization.embedBits).toBe(8);
      const written = readModelFile(join(out, manifest.model.path)).graph.initializers.reduce((sum, x) => sum + x.data.byteLength, 0);
      const config = parseDecoderConfig(JSON.parse(readFileSync(join(tied.dir, 'config.json'), 'utf8')));
      expect(Math.abs(estimateModelBytes(config, 4, 32, 8, undefined, 2, true) - written) / written).toBeLessThan(0.01);
      // Shared as RTN's and GPTQ's are, plus the H floats of 1/s.
      expect(Math.abs(estimateModelBytes(config, 4, 32, 8) - written) / written).toBeLessThan(0.01);
    } finally {
      tied.cleanup();
    }
  });

  it('writes each weight of an AWQ and a GPTQ build in the block that stores it in the fewest bytes', async () => {
    // Block 128 on rows of 64 (attention, head) and 172 (the down projection): blocks of 64 for both.
    for (const method of ['awq', 'gptq'] as const) {
      const out = join(t.dir, `${method}-b128`);
      await buildBundle({ modelDir: model.dir, out, quantize: { method, bits: 4, blockSize: 128 }, calibration: { quick: true }, testRun: false });
      const manifest = readBundle(out).manifest;
      const graph = readModelFile(join(out, manifest.model.path)).graph;
      const nodes = graph.nodes.filter((n) => n.opType === 'MatMulNBits');
      expect(nodes.length).toBeGreaterThan(0);
      for (const n of nodes) {
        const [K, bits] = [n.attributes.K.value as number, n.attributes.bits.value as number];
        expect(n.attributes.block_size.value).toBe(writtenBlockSize(K, 128, bits));
      }
      expect(nodes.some((n) => n.attributes.K.value === 172 && n.attributes.block_size.value === 64)).toBe(true);
      const written = graph.initializers.reduce((sum, x) => sum + x.data.byteLength, 0);
      const config = parseDecoderConfig(JSON.parse(readFileSync(join(model.dir, 'config.json'), 'utf8')));
      expect(Math.abs(estimateModelBytes(config, 4, 128, 8, undefined, 2, method === 'awq') - written) / written).toBeLessThan(0.01);
      expect(verifyBundle(out)).toMatchObject({ ok: true, problems: [] });
    }
  });

  it('--force replaces a bundle only when it holds nothing but its own files', async () => {
    const out = join(t.dir, 'mine');
    await buildBundle({ modelDir: model.dir, out, quantize: { method: 'rtn', bits: 4 }, testRun: false });
    writeFileSync(join(out, 'notes.md'), 'mine');
    await expect(buildBundle({ modelDir: model.dir, out, quantize: { method: 'rtn', bits: 4 }, overwrite: true, testRun: false })).rejects.toThrow(
      /also holds files it did not write \(notes\.md\)/,
    );
    expect(readFileSync(join(out, 'notes.md'), 'utf8')).toBe('mine');
    rmSync(join(out, 'notes.md'));
    await buildBundle({ modelDir: model.dir, out, quantize: { method: 'rtn', bits: 4 }, overwrite: true, testRun: false });
    expect(verifyBundle(out).ok).toBe(true);
  });

  it('refuses to overwrite without the flag, before doing any work', async () => {
    const out = join(t.dir, 'ext');
    await expect(buildBundle({ modelDir: model.dir, out, quantize: { method: 'none' } })).rejects.toThrow(/already exists[\s\S]*/);
  });

  it('verify reports missing, changed and unlisted files, and an edited manifest', async () => {
    const out = join(t.dir, 'v');
    await buildBundle({ modelDir: model.dir, out, quantize: { method: 'none' } });
    writeFileSync(join(out, 'extra.txt'), 'x');
    rmSync(join(out, 'tokenizer_config.json'));
    const cfg = join(out, 'config.json');
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('"llama"', '"llamb"'));
    const m = JSON.parse(readFileSync(join(out, 'alki.json'), 'utf8'));
    m.source.id = 'someone-else';
    writeFileSync(join(out, 'alki.json'), JSON.stringify(m));
    const v = verifyBundle(out);
    expect(v.ok).toBe(false);
    expect(v.problems.map((p) => `${p.path}:${p.problem}`).sort()).toEqual([
      'alki.json:manifest',
      'config.json:sha256',
      'extra.txt:unlisted',
      'tokenizer_config.json:missing',
    ]);
  });

  it('rejects manifests whose paths leave the bundle', async () => {
    for (const p of ['../x', '/etc/passwd', 'a/../../b', 'C:/x', 'a\\b', '']) expect(isSafeRelativePath(p)).toBe(false);
    expect(isSafeRelativePath('onnx/model.onnx')).toBe(true);
    const out = join(t.dir, 'evil');
    await writeDirAtomically(out, false, async (tmp) => {
      writeFileSync(
        join(tmp, 'alki.json'),
        JSON.stringify({ schemaVersion: 1, files: [{ path: '../secret', bytes: 1, sha256: 'x' }], model: { path: 'onnx/model.onnx' } }),
      );
    });
    expect(() => readBundle(out)).toThrow(/not a relative path inside the bundle/);
  });
});

describe('writeDirAtomically', () => {
  it('leaves nothing behind when the writer fails, and keeps an old bundle intact', async () => {
    const out = join(t.dir, 'atomic');
    await expect(
      writeDirAtomically(out, false, async (tmp) => {
        writeFileSync(join(tmp, 'half.bin'), 'x');
        throw new Error('disk on fire');
      }),
    ).rejects.toThrow(/disk on fire/);
    expect(existsSync(out)).toBe(false);
    // Only a bundle (a valid alki.json) may be replaced: the one built above serves as the old bundle.
    const manifest = readFileSync(join(t.dir, 'ext', 'alki.json'));
    // (Its alki.json alone: a file it does not list would stop --force, see assertWritableBundleDir.)
    await writeDirAtomically(out, false, async (tmp) => writeFileSync(join(tmp, 'alki.json'), manifest));
    await expect(
      writeDirAtomically(out, true, async () => {
        throw new Error('again');
      }),
    ).rejects.toThrow(/again/);
    expect(readdirSync(out)).toEqual(['alki.json']);
    await writeDirAtomically(out, true, async (tmp) => writeFileSync(join(tmp, 'v2'), '2'));
    expect(readdirSync(out)).toEqual(['v2']);
    // A folder that is not a bundle is never replaced, even with overwrite.
    await expect(writeDirAtomically(out, true, async (tmp) => writeFileSync(join(tmp, 'v3'), '3'))).rejects.toThrow(
      /is not an Alki bundle, so --force will not replace it/,
    );
    expect(readdirSync(out)).toEqual(['v2']);
    expect(readdirSync(t.dir).filter((n) => n.includes('partial'))).toEqual([]);
  });

  it('turns ENOSPC into a clear NO_SPACE error', async () => {
    const out = join(t.dir, 'full');
    const err = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    await expect(
      writeDirAtomically(out, false, async () => {
        throw err;
      }),
    ).rejects.toMatchObject({ code: 'NO_SPACE', hint: expect.stringMatching(/free some disk space/) });
    expect(existsSync(out)).toBe(false);
  });
});

describe('compareMethods', () => {
  it('rebuilds a calibrated bundle when the calibration changes, and reuses it when it does not', async () => {
    const out = join(t.dir, 'cmp');
    const calib = (name: string, text: string) => {
      const path = join(t.dir, name);
      writeFileSync(path, text.repeat(400));
      return path;
    };
    const a = calib('a.txt', 'the cat sat on the mat and the dog ran. ');
    const b = calib('b.txt', 'a bird flew over the big red house today. ');
    const run = async (path: string) => {
      const { bundles } = await compareMethods({
        modelDir: model.dir,
        out,
        methods: parseMethods('gptq4'),
        metrics: ['size'],
        calibration: { path, samples: 2, seqLen: 16 },
      });
      return bundles[1].manifest;
    };
    const first = await run(a);
    expect(first.quantization.calibration?.source).toMatch(/^a\.txt/);
    const again = await run(a);
    expect(again.createdAt).toBe(first.createdAt);
    const other = await run(b);
    expect(other.quantization.calibration?.source).toMatch(/^b\.txt/);
  });
});

describe('W8A8 bundles', () => {
  it('compare’s w8a8-naive is unsmoothed (alpha null, no calibration), SmoothQuant records α and its weight format', async () => {
    const [naive] = parseMethods('w8a8-naive');
    const { manifest } = await buildBundle({ modelDir: model.dir, out: join(t.dir, 'naive'), quantize: naive.quantize });
    expect(manifest.quantization).toMatchObject({ method: 'smoothquant', alpha: null, w8a8Format: 's7', calibration: null, headBits: 8 });
    const [sq] = parseMethods('smoothquant');
    const { manifest: smoothed } = await buildBundle({
      modelDir: model.dir,
      out: join(t.dir, 'sq'),
      quantize: { ...sq.quantize, w8a8Format: 'u8' },
      calibration: { samples: 2, seqLen: 16 },
    });
    expect(smoothed.quantization).toMatchObject({ method: 'smoothquant', alpha: 0.5, w8a8Format: 'u8' });
  });
});

describe('calibration size', () => {
  it('quick calibration is 8 samples of min(256, context) tokens unless given', async () => {
    const { manifest } = await buildBundle({
      modelDir: model.dir,
      out: join(t.dir, 'quick'),
      quantize: { method: 'gptq', bits: 4 },
      calibration: { quick: true },
    });
    const context = JSON.parse(readFileSync(join(model.dir, 'config.json'), 'utf8')).max_position_embeddings as number;
    expect(manifest.quantization.calibration).toMatchObject({ samples: 8, sequenceLength: Math.min(256, context) });
    expect(manifest.quantization.calibration?.source).toMatch(/^sampled from an int4 copy of the model/);
    const events: { done: number; total: number; unit?: string }[] = [];
    const { manifest: custom } = await buildBundle({
      modelDir: model.dir,
      out: join(t.dir, 'quick2'),
      quantize: { method: 'gptq', bits: 4 },
      calibration: { quick: true, samples: 3, seqLen: 16 },
      onProgress: (e) => e.step === 'calibration data' && events.push(e),
    });
    expect(custom.quantization.calibration).toMatchObject({ samples: 3, sequenceLength: 16 });
    // Sampling reports its tokens as it goes (a 1.1B model samples for minutes), in order, up to all 3 × 16.
    expect(events.every((e) => e.unit === 'tokens' && e.total === 48)).toBe(true);
    expect(events.length).toBeGreaterThan(10);
    expect(events.map((e) => e.done)).toEqual([...events.map((e) => e.done)].sort((a, b) => a - b));
    expect(events.at(-1)!.done).toBe(48);
  });

  it('chooses the quick recipe by the model’s size unless the options choose', () => {
    const big = AUTO_QUICK_PARAMETERS;
    expect(resolveCalibration(undefined, big, 'gptq')).toMatchObject({ quick: true, auto: true });
    expect(resolveCalibration({ seed: 2 }, big - 1, 'awq')).toMatchObject({ quick: false, auto: true, seed: 2 });
    // An explicit choice or an explicit size wins over the model's size.
    expect(resolveCalibration({ quick: false }, 10 * big, 'gptq')).toMatchObject({ quick: false, auto: false });
    expect(resolveCalibration({ quick: true }, 1, 'gptq')).toMatchObject({ quick: true, auto: false });
    expect(resolveCalibration({ samples: 32 }, 10 * big, 'gptq')).toMatchObject({ quick: false, auto: false });
    expect(resolveCalibration({ seqLen: 512 }, 10 * big, 'gptq')).toMatchObject({ quick: false, auto: false });
    // SmoothQuant only measures activations: its full recipe is cheap at any size.
    expect(resolveCalibration(undefined, 10 * big, 'smoothquant')).toMatchObject({ quick: false, auto: false });
    // The quick recipe makes GPTQ plain unless its levers are asked for.
    const quick = resolveCalibration(undefined, big, 'gptq');
    expect(withQuickDefaults({ method: 'gptq', bits: 4 }, quick)).toMatchObject({ trueSequential: false, floatTargets: false });
    expect(withQuickDefaults({ method: 'gptq', bits: 4, floatTargets: true }, quick)).toMatchObject({ trueSequential: true, floatTargets: true });
    expect(withQuickDefaults({ method: 'gptq', bits: 4 }, resolveCalibration(undefined, big - 1, 'gptq'))).toEqual({ method: 'gptq', bits: 4 });
  });

  it('a small model gets the full recipe by default, and no note', async () => {
    const messages: string[] = [];
    const r = await buildBundle({
      modelDir: model.dir,
      out: join(t.dir, 'full'),
      quantize: { method: 'gptq', bits: 4 },
      onProgress: (e) => e.message && messages.push(e.message),
    });
    expect(r.notes).toEqual([]);
    expect(messages).toEqual([]);
    expect(r.manifest.quantization).toMatchObject({ trueSequential: true, floatTargets: true });
    const context = JSON.parse(readFileSync(join(model.dir, 'config.json'), 'utf8')).max_position_embeddings as number;
    expect(r.manifest.quantization.calibration).toMatchObject({ samples: 32, sequenceLength: Math.min(512, context) });
  });
});
