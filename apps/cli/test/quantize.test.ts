import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir, tinyLlama } from '../../../tools/fixtures/index.js';
import { alki, qemuX86 } from './helpers.js';

const work = tempDir('alki-q-cli-');
const model = tinyLlama({ seed: 8 });
afterAll(() => {
  work.cleanup();
  model.cleanup();
});

describe('alki build --quantize gptq|awq', () => {
  it('calibrates on text sampled from the model by default and records it in alki.json', () => {
    const out = join(work.dir, 'gptq');
    const r = alki(['build', model.dir, '--quantize', 'gptq', '--calib-samples', '4', '--calib-seqlen', '32', '--act-order', '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/gptq calibrate/);
    const m = JSON.parse(readFileSync(join(out, 'alki.json'), 'utf8'));
    expect(m.quantization).toMatchObject({
      method: 'gptq',
      bits: 4,
      calibration: { samples: 4, sequenceLength: 32, source: expect.stringMatching(/sampled from an int4 copy of the model/) },
    });
    expect(alki(['run', out, '--prompt', 'the cat', '-n', '4']).status).toBe(0);
  });

  it('calibrates on a --calib text file', () => {
    const text = join(work.dir, 'calib.txt');
    writeFileSync(text, 'once upon a time there was a little cat and a big dog. '.repeat(40));
    const out = join(work.dir, 'awq');
    const r = alki(['build', model.dir, '--quantize', 'awq', '--calib', text, '--calib-samples', '4', '--calib-seqlen', '32', '--out', out, '--quiet']);
    expect(r.status, r.stderr).toBe(0);
    const m = JSON.parse(readFileSync(join(out, 'alki.json'), 'utf8'));
    expect(m.quantization.calibration.source).toMatch(/calib\.txt \(sha256/);
  });

  it('smoothquant builds a W8A8 bundle; with --bits 4 it is refused with a hint', () => {
    const out = join(work.dir, 'sq');
    const r = alki([
      'build',
      model.dir,
      '--quantize',
      'smoothquant',
      '--alpha',
      '0.6',
      '--calib-samples',
      '4',
      '--calib-seqlen',
      '32',
      '--out',
      out,
      '--quiet',
    ]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/smoothquant W8A8/);
    const m = JSON.parse(readFileSync(join(out, 'alki.json'), 'utf8'));
    expect(m.quantization).toMatchObject({ method: 'smoothquant', bits: 8, groupSize: null, symmetric: true });
    expect(alki(['run', out, '--prompt', 'the cat', '-n', '4']).status).toBe(0);
    const bad = alki(['build', model.dir, '--quantize', 'smoothquant', '--bits', '4', '--out', join(work.dir, 'sq4')]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/SmoothQuant is W8A8[\s\S]*hint: .*awq or gptq/);
    expect(existsSync(join(work.dir, 'sq4'))).toBe(false);
  });

  it('bad calibration input: missing file, too short a text, --act-order without GPTQ', () => {
    const out = join(work.dir, 'bad');
    const missing = alki(['build', model.dir, '--quantize', 'gptq', '--calib', join(work.dir, 'nope.txt'), '--out', out]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/calibration file not found/);
    const short = join(work.dir, 'short.txt');
    writeFileSync(short, 'the cat');
    const tooShort = alki(['build', model.dir, '--quantize', 'awq', '--calib', short, '--out', out]);
    expect(tooShort.status).toBe(1);
    expect(tooShort.stderr).toMatch(/fewer than one sample[\s\S]*hint: use a longer text, or a smaller --calib-seqlen/);
    const act = alki(['build', model.dir, '--quantize', 'rtn', '--act-order', '--out', out]);
    expect(act.status).toBe(2);
    expect(act.stderr).toMatch(/--act-order applies to GPTQ only/);
    expect(existsSync(out)).toBe(false);
  });
});

describe('W8A8 formats on the CPU that runs them', () => {
  it('build --exclude and --head-bits reach alki.json; a pattern that matches nothing is refused', () => {
    const dir = join(work.dir, 'excl');
    const r = alki(['build', model.dir, '--exclude', '/mlp\\.down_proj/', '--head-bits', '32', '--out', dir, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const q = JSON.parse(readFileSync(join(dir, 'alki.json'), 'utf8')).quantization;
    expect(q.headBits).toBe(32);
    expect(q.excluded).toEqual(expect.arrayContaining(['lm_head.weight', 'model.layers.0.mlp.down_proj.weight']));
    const none = alki(['build', model.dir, '--exclude', 'lm_head', '--out', join(work.dir, 'excl2')]);
    expect(none.status).toBe(2); // a bad option value
    expect(none.stderr).toMatch(/--exclude lm_head matches no linear layer[\s\S]*hint: give weight names such as/);
    expect(existsSync(join(work.dir, 'excl2'))).toBe(false);
  });

  it.skipIf(!qemuX86)('run and bench warn about an s8 bundle on an AVX2-only CPU (qemu Haswell), not about s7', () => {
    const s8 = join(work.dir, 'w8a8-s8');
    const s7 = join(work.dir, 'w8a8-s7');
    expect(alki(['build', model.dir, '--quantize', 'smoothquant', '--no-smooth', '--w8a8-format', 's8', '--out', s8, '--quiet']).status).toBe(0);
    expect(alki(['build', model.dir, '--quantize', 'smoothquant', '--no-smooth', '--out', s7, '--quiet']).status).toBe(0);
    const native = alki(['run', s8, '-n', '2', '--quiet']);
    expect(native.status).toBe(0);
    const warned = alki(['run', s8, '-n', '2', '--json'], { emulate: 'Haswell' });
    expect(warned.status, warned.stderr).toBe(0);
    expect(warned.stderr).toMatch(/^warning: this bundle's W8A8 weights are stored as s8[\s\S]*--w8a8-format s7/m);
    expect(JSON.parse(warned.stdout).warnings).toHaveLength(1);
    const bench = alki(['bench', s8, '--metrics', 'size', '--json'], { emulate: 'Haswell' });
    expect(JSON.parse(bench.stdout).warnings[0]).toMatch(/stored as s8/);
    expect(alki(['run', s7, '-n', '2', '--quiet'], { emulate: 'Haswell' }).stderr).not.toMatch(/^warning: /m);
  });
});
