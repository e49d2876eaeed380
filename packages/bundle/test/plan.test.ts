import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PRESETS, presetById } from '@alki/hardware-presets';
import { VALIDATED_MODELS, openHfModel, parseDecoderConfig } from '@alki/models';
import { measureIsolated } from '@alki/eval';
import { buildBundle, checkTargetFit, estimateRunMemory, parseMemory, planBuilds, targetSettings, validateManifest } from '../src/index.js';
import { stories260K, tempDir } from '../../../tools/fixtures/index.js';

const tinyllama = parseDecoderConfig(VALIDATED_MODELS.find((m) => m.id.startsWith('TinyLlama'))!.config);
const work = tempDir('alki-plan-');
afterAll(() => work.cleanup());

describe('planBuilds: what fits a device, from the config alone', () => {
  it('TinyLlama on a 4 GB Pi 4: the recommended GPTQ int4 block 32 fits, fp32 does not', () => {
    const p = planBuilds(tinyllama, presetById('raspberry-pi-4'), { memoryBytes: parseMemory('4GB') });
    expect(p.usableBytes).toBeCloseTo(4 * 2 ** 30 * 0.75, -3);
    expect(p.context).toBe(1024);
    expect(p.chosen?.label).toBe('gptq int4 b32');
    expect(p.rows.find((r) => r.label === 'fp32')?.fits).toBe(false);
    for (const r of p.rows) expect(r.peakBytes).toBeGreaterThan(r.bundleBytes * 0.8);
  });

  it('a 1 GB Pi 4 fits nothing and says what would (a shorter context or a smaller model)', () => {
    const p = planBuilds(tinyllama, presetById('raspberry-pi-4'), { memoryBytes: parseMemory('1GB') });
    expect(p.chosen).toBeUndefined();
    expect(p.suggestion).toMatch(/smaller model|--context \d+/);
  });

  it('falls back to fewer bits before giving up, and rejects nonsense', () => {
    const p = planBuilds(tinyllama, presetById('raspberry-pi-4'), { memoryBytes: parseMemory('1.5GB') });
    expect(p.rows.find((r) => r.label === 'gptq int4 b32')?.fits).toBe(false);
    expect(p.chosen).toMatchObject({ bits: 4, blockSize: 128 });
    expect(() => planBuilds(tinyllama, presetById('raspberry-pi-5'), { context: 99999 })).toThrow(
      /--context must be a whole number from 2 to the model's 2048/,
    );
    expect(parseMemory('512MB')).toBe(512 * 2 ** 20);
    expect(parseMemory('8')).toBe(8 * 2 ** 30);
    expect(() => parseMemory('lots')).toThrow(/is not a size/);
  });

  it('a preset’s settings with the user’s flags on top, reported as overrides; a build that cannot fit is refused unless forced', () => {
    const pi = presetById('raspberry-pi-4');
    const { settings, overrides } = targetSettings(pi, { bits: 8, flavour: undefined });
    expect(settings).toMatchObject({ method: 'gptq', bits: 8, blockSize: 32, headBits: 8, flavour: 'ort', w8a8Format: 's8', threads: 4, context: 1024 });
    expect(overrides).toEqual(['bits']);
    expect(() =>
      checkTargetFit(tinyllama, pi, targetSettings(pi, { method: 'none' }).settings, { memoryBytes: parseMemory('2GB'), overrides: ['method'] }),
    ).toThrow(/needs about [\d.]+ GB at run time .* but raspberry-pi-4 has [\d.]+ GB usable/);
    const forced = checkTargetFit(tinyllama, pi, targetSettings(pi, { method: 'none' }).settings, {
      memoryBytes: parseMemory('2GB'),
      overrides: ['method'],
      forceFit: true,
    });
    expect(forced.forcedFit).toBe(true);
  });

  it('records whole bytes for every preset and any --memory, so alki.json validates (browser-wasm: 4 GiB × 0.6)', () => {
    for (const preset of PRESETS) {
      for (const memory of [undefined, '1.3GB', '3.7GiB']) {
        const t = checkTargetFit(tinyllama, preset, targetSettings(preset, {}).settings, {
          memoryBytes: memory ? parseMemory(memory) : undefined,
          overrides: [],
          forceFit: true,
        });
        for (const v of [t.memoryBytes, t.usableBytes, t.estimatedPeakBytes]) expect(Number.isSafeInteger(v), `${preset.id} ${memory}`).toBe(true);
        expect(() => validateManifest(manifestWith(t), 'test')).not.toThrow();
      }
    }
  });
});

/** A minimal valid manifest carrying `target`. */
function manifestWith(target: unknown): unknown {
  return {
    schemaVersion: 1,
    alkiVersion: '0.1.0',
    createdAt: '2026-11-27T00:00:00Z',
    source: { id: 'x', architecture: 'LlamaForCausalLM', modelType: 'llama', parameters: 1 },
    quantization: { method: 'none', bits: 32, groupSize: null, symmetric: null, accuracyLevel: null, calibration: null, excluded: [], quantizedLayers: 0 },
    runtime: { onnxruntime: '>=1.18', opset: 17, domains: ['ai.onnx'], executionProviders: ['cpu'], flavour: 'ort' },
    model: {
      path: 'onnx/model.onnx',
      externalData: [],
      numLayers: 1,
      numKvHeads: 1,
      headDim: 8,
      vocabSize: 16,
      maxPositions: 64,
      bosTokenId: 1,
      eosTokenIds: [2],
    },
    target,
    files: [],
    metrics: { modelBytes: { value: 1, method: 'x' }, sizeBytes: { value: 1, method: 'x' } },
    manifestSha256: '0'.repeat(64),
  };
}

describe.skipIf(!stories260K)('the memory estimate against alki run on stories260K', () => {
  it('within 10% of the measured peak for a 128-token prompt decoded to the full context', async () => {
    const out = join(work.dir, 's260k');
    const { manifest } = await buildBundle({
      modelDir: stories260K!,
      out,
      quantize: { method: 'rtn', bits: 4 },
      target: { preset: presetById('generic-x86_64'), ...targetSettings(presetById('generic-x86_64'), { method: 'rtn' }) },
    });
    expect(manifest.target).toMatchObject({ preset: 'generic-x86_64', settings: { method: 'rtn', bits: 4, context: 512 } });
    const config = openHfModel(stories260K!).config;
    const est = estimateRunMemory(config, { method: 'rtn', bits: 4, blockSize: 32, headBits: 8 }, 512);
    const m = await measureIsolated(join(out, manifest.model.path), { promptTokens: 128, newTokens: 384, runs: 1, warmupRuns: 0, vocabSize: 512 });
    expect(Math.abs(est.peakBytes - m.peakRssBytes) / m.peakRssBytes).toBeLessThan(0.1);
  });
});
