import { existsSync, readFileSync, readdirSync, writeFileSync, mkdirSync, copyFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stories260K, tempDir, tinyLlama } from '../../../tools/fixtures/index.js';
import { alki } from './helpers.js';

const work = tempDir('alki-cli-');
afterAll(() => work.cleanup());

describe('alki build demo (offline, empty cache, no ../shared)', () => {
  it('builds the embedded stories260K, measures it against fp32 on the embedded text, and prints a sample', () => {
    const cache = join(work.dir, 'cache');
    const r = alki(['build', 'demo', '--out', join(work.dir, 'demo')], { env: { ALKI_CACHE: cache, ALKI_FIXTURES: join(work.dir, 'no-fixtures') } });
    expect(r.stderr).not.toMatch(/error/);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/source\s+demo/);
    expect(r.stdout).toMatch(/quantization\s+gptq int4, block 128, zero points/); // the default format below 8 bits (defaultBlockSize)
    // The comparison against fp32: perplexity on the embedded text, speed, size.
    expect(r.stdout).toMatch(/fp32\s+1\.\d+ MB\s+3\.\d{4}/);
    expect(r.stdout).toMatch(/gptq int4 b128\s+[\d.]+ kB\s+3\.\d{4}/);
    expect(r.stdout).toMatch(/text: tinystories-valid-150\.txt/);
    // The sample: llama2.c's prompt continued by the int4 bundle, in words.
    expect(r.stdout).toMatch(/sample \(greedy, 48 tokens\): Once upon a time, there was a little/);
    expect(existsSync(cache)).toBe(false);
    const m = JSON.parse(readFileSync(join(work.dir, 'demo', 'alki.json'), 'utf8'));
    expect(m.metrics.perplexity.value).toBeGreaterThan(3);
    const again = alki(['info', join(work.dir, 'demo'), '--verify']);
    expect(again.status).toBe(0);
    expect(again.stdout).toMatch(/OK: \d+ files/);
  });
});

describe.skipIf(!stories260K)('stories260K bundles through the CLI', () => {
  const ref = stories260K ? JSON.parse(readFileSync(join(stories260K, 'reference.json'), 'utf8')) : undefined;
  const out = (name: string) => join(work.dir, name);
  beforeAll(() => {
    for (const [name, args] of [
      ['s260k-fp32', ['--quantize', 'none']],
      ['s260k-rtn4', ['--quantize', 'rtn', '--bits', '4', '--block-size', '32']],
      ['s260k-rtn8', ['--quantize', 'rtn', '--bits', '8']],
    ] as const) {
      const r = alki(['build', stories260K!, ...args, '--out', out(name), '--quiet']);
      if (r.status !== 0) throw new Error(`build ${name} failed: ${r.stderr}`);
    }
  });

  it('alki run on the fp32 bundle prints the run.c reference continuation', () => {
    const r = alki(['run', out('s260k-fp32'), '--prompt', 'Once upon a time', '--max-new-tokens', '32']);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`Once upon a time${ref.greedy_text}\n`);
    const j = JSON.parse(alki(['run', out('s260k-fp32'), '--prompt', 'Once upon a time', '--max-new-tokens', '32', '--json']).stdout);
    expect(j.ids).toEqual(ref.greedy_ids);
    expect(j.promptIds).toEqual(ref.prompt_ids);
  });

  it('the int8 bundle keeps at least the first 16 reference tokens', () => {
    const j = JSON.parse(alki(['run', out('s260k-rtn8'), '--prompt', 'Once upon a time', '--max-new-tokens', '32', '--json']).stdout);
    expect(j.ids.slice(0, 16)).toEqual(ref.greedy_ids.slice(0, 16));
  });

  it('the int4 bundle runs, and its quantized weights are at most 30% of fp32', () => {
    const j = JSON.parse(alki(['run', out('s260k-rtn4'), '--prompt', 'Once upon a time', '--max-new-tokens', '16', '--json']).stdout);
    expect(j.ids).toHaveLength(16);
    const m4 = JSON.parse(alki(['info', out('s260k-rtn4'), '--json']).stdout).manifest;
    const m32 = JSON.parse(alki(['info', out('s260k-fp32'), '--json']).stdout).manifest;
    const { float, quantized } = m4.metrics.quantizedWeightBytes.value;
    expect(quantized / float).toBeLessThanOrEqual(0.3);
    // The same holds on disk: the int4 ONNX file against the fp32 one, less the float embedding both keep.
    const embeddingBytes = 512 * 64 * 4;
    expect((m4.metrics.modelBytes.value - embeddingBytes) / (m32.metrics.modelBytes.value - embeddingBytes)).toBeLessThanOrEqual(0.3);
  });

  it('alki info --verify detects a flipped byte in any bundle file', () => {
    const src = out('s260k-rtn4');
    const files = [...JSON.parse(readFileSync(join(src, 'alki.json'), 'utf8')).files.map((f: { path: string }) => f.path), 'alki.json'];
    expect(files).toContain('onnx/model_q4.onnx');
    expect(files).toContain('tokenizer.json');
    for (const file of files) {
      const copy = join(work.dir, `flip-${file.replace(/\W/g, '_')}`);
      copyTree(src, copy);
      const path = join(copy, file);
      const bytes = readFileSync(path);
      const at = Math.floor(bytes.length / 2);
      bytes[at] ^= 0x04;
      writeFileSync(path, bytes);
      const r = alki(['info', copy, '--verify']);
      expect(r.status, `flipped byte in ${file} not detected`).not.toBe(0);
      expect(r.stdout + r.stderr).toMatch(/FAILED|verification|damaged|not valid JSON/);
    }
  });
});

describe('clear errors, non-zero exit, no bundle left behind', () => {
  const bad = tempDir('alki-bad-');
  afterAll(() => bad.cleanup());

  function expectCleanFailure(args: string[], message: RegExp, outName: string) {
    const outDir = join(bad.dir, 'dist', outName);
    const r = alki(['build', ...args, '--out', outDir]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).toMatch(/hint:/);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace without --verbose
    expect(existsSync(outDir)).toBe(false);
    const dist = join(bad.dir, 'dist');
    if (existsSync(dist)) expect(readdirSync(dist)).toEqual([]);
  }

  it('missing folder', () => expectCleanFailure([join(bad.dir, 'nope')], /model folder not found/, 'a'));

  it('folder without config.json', () => {
    mkdirSync(join(bad.dir, 'empty'));
    expectCleanFailure([join(bad.dir, 'empty')], /has no config\.json/, 'b');
  });

  it('unsupported model_type lists the supported ones', () => {
    const m = tinyLlama();
    const cfg = JSON.parse(readFileSync(join(m.dir, 'config.json'), 'utf8'));
    writeFileSync(join(m.dir, 'config.json'), JSON.stringify({ ...cfg, model_type: 'mamba' }));
    expectCleanFailure([m.dir], /model_type "mamba" is not supported[\s\S]*supported model types: llama/, 'c');
    m.cleanup();
  });

  it('truncated safetensors', () => {
    const m = tinyLlama();
    const p = join(m.dir, 'model.safetensors');
    writeFileSync(p, readFileSync(p).subarray(0, statSync(p).size - 100));
    expectCleanFailure([m.dir], /not a valid safetensors file[\s\S]*truncated/, 'd');
    m.cleanup();
  });

  it('unknown --quantize value', () => {
    const m = tinyLlama();
    expectCleanFailure([m.dir, '--quantize', 'magic'], /unknown quantization method "magic"[\s\S]*choose one of: none, rtn/, 'e');
    m.cleanup();
  });

  it('unknown flag is a usage error (exit 2)', () => {
    const r = alki(['build', 'demo', '--bitz', '4']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/Unknown argument: bitz/);
  });

  it('run on a folder that is not a bundle', () => {
    const r = alki(['run', bad.dir, '--prompt', 'x']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/not an Alki bundle/);
  });

  it('--json errors are machine-readable', () => {
    const r = alki(['info', join(bad.dir, 'none'), '--json']);
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout).error.code).toBe('NOT_FOUND');
  });
});

function copyTree(src: string, dst: string) {
  mkdirSync(dst, { recursive: true });
  for (const e of readdirSync(src, { withFileTypes: true })) {
    if (e.isDirectory()) copyTree(join(src, e.name), join(dst, e.name));
    else copyFileSync(join(src, e.name), join(dst, e.name));
  }
}
