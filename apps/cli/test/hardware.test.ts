import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tempDir, tinyLlama } from '../../../tools/fixtures/index.js';
import { alki } from './helpers.js';

const work = tempDir('alki-hw-cli-');
const model = tinyLlama({ seed: 12 });
afterAll(() => {
  work.cleanup();
  model.cleanup();
});

describe('alki presets, detect, plan and build --target', () => {
  it('presets lists every preset; --json carries each recommendation with its reason', () => {
    const r = alki(['presets']);
    expect(r.status).toBe(0);
    for (const id of [
      'raspberry-pi-4',
      'raspberry-pi-5',
      'jetson-orin-nano',
      'jetson-orin-nx',
      'intel-nuc-avx2',
      'generic-x86_64',
      'generic-arm64',
      'browser-wasm',
      'browser-webgpu',
    ])
      expect(r.stdout).toContain(id);
    const json = JSON.parse(alki(['presets', '--json']).stdout);
    expect(json.find((p: { id: string }) => p.id === 'raspberry-pi-4').recommended.w8a8Format).toMatchObject({
      value: 's8',
      why: expect.stringMatching(/exact/),
    });
  });

  it('detect names this machine’s preset and the facts that decided', () => {
    const r = alki(['detect']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^preset\s+\S+ — /m);
    expect(r.stdout).toMatch(/decided by:\n {2}\S/);
    const j = JSON.parse(alki(['detect', '--json']).stdout);
    expect(j).toMatchObject({ preset: expect.any(String), cpu: { arch: expect.any(String), features: expect.any(Array) }, decidedBy: expect.any(Array) });
  });

  it('plan from config.json alone: sizes and peaks per build; nothing fits → non-zero with a suggestion', () => {
    const ok = alki(['plan', model.dir, '--target', 'raspberry-pi-4', '--memory', '1GB']);
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/on raspberry-pi-4: .* usable of 1\.07 GB, context \d+ tokens/);
    expect(ok.stdout).toMatch(/▶ gptq int4 b32 +\S+ \S+ +\S+ \S+ +yes/);
    const j = JSON.parse(alki(['plan', model.dir, '--target', 'raspberry-pi-4', '--memory', '1GB', '--json']).stdout);
    expect(j.rows.length).toBeGreaterThan(3);
    const none = alki(['plan', model.dir, '--target', 'raspberry-pi-4', '--memory', '100MB']);
    expect(none.status).toBe(1);
    expect(none.stderr).toMatch(/error: no build of .* fits raspberry-pi-4[\s\S]*hint: .*(smaller model|--context)/);
    const bad = alki(['plan', model.dir, '--target', 'pi-9']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/unknown --target "pi-9"[\s\S]*hint: choose one of: auto, raspberry-pi-4/);
  });

  it('build --target applies the preset, reports overrides, records the target; refuses what cannot fit unless --force-fit', () => {
    const out = join(work.dir, 'pi');
    const r = alki(['build', model.dir, '--target', 'raspberry-pi-5', '--quantize', 'rtn', '--block-size', '128', '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/target raspberry-pi-5: rtn int4, block 128, head 8 bits, ort \(overridden by your flags: method, blockSize\)/);
    const m = JSON.parse(readFileSync(join(out, 'alki.json'), 'utf8'));
    expect(m.target).toMatchObject({
      preset: 'raspberry-pi-5',
      arch: 'arm64',
      settings: { method: 'rtn', blockSize: 128, threads: 4 },
      overrides: ['method', 'blockSize'],
    });
    expect(m.quantization).toMatchObject({ method: 'rtn', groupSize: 128, headBits: 8 });
    expect(alki(['info', out]).stdout).toMatch(/^target\s+raspberry-pi-5: .*4 threads/m);
    // Built for an arm64 board, run here (x86): it runs, with a warning.
    const run = alki(['run', out, '-n', '2']);
    expect(run.status).toBe(0);
    if (process.arch === 'x64') expect(run.stderr).toMatch(/^warning: this bundle was built for raspberry-pi-5 \(arm64\) and runs here on x86_64/m);
    const tooBig = alki(['build', model.dir, '--target', 'raspberry-pi-4', '--memory', '100MB', '--quantize', 'rtn', '--out', join(work.dir, 'big')]);
    expect(tooBig.status).toBe(1);
    expect(tooBig.stderr).toMatch(/needs about [\d.]+ GB at run time[\s\S]*--force-fit builds it anyway/);
    const forced = alki([
      'build',
      model.dir,
      '--target',
      'raspberry-pi-4',
      '--memory',
      '100MB',
      '--quantize',
      'rtn',
      '--force-fit',
      '--out',
      join(work.dir, 'big'),
      '--quiet',
    ]);
    expect(forced.status, forced.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(work.dir, 'big', 'alki.json'), 'utf8')).target.forcedFit).toBe(true);
    expect(alki(['build', model.dir, '--memory', '1GB', '--out', join(work.dir, 'x')]).stderr).toMatch(/--memory only applies with --target/);
  });
});

describe('alki build without a method or block size', () => {
  it('makes GPTQ at block 128 below 8 bits and RTN at block 32 at 8 bits; --quantize rtn keeps block 32', () => {
    const cases: [string[], string, number, number][] = [
      [[], 'gptq', 4, 128],
      [['--bits', '8'], 'rtn', 8, 32],
      [['--quantize', 'rtn'], 'rtn', 4, 32],
    ];
    for (const [args, method, bits, blockSize] of cases) {
      const r = alki(['build', model.dir, ...args, '--no-test-run', '--json', '--out', join(work.dir, `defaults-${method}-${bits}`)]);
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).report).toMatchObject({ method, bits, blockSize });
    }
  });

  it("folds AWQ's scales before GPTQ by default at block 16 only; --no-awq-scales turns that off", () => {
    const cases: [string[], boolean][] = [
      [['--block-size', '16'], true],
      [['--block-size', '16', '--no-awq-scales'], false],
      [['--block-size', '32'], false],
    ];
    for (const [args, awqScales] of cases) {
      const r = alki(['build', model.dir, ...args, '--no-test-run', '--json', '--out', join(work.dir, `awq-scales-${args.join('')}`)]);
      expect(r.status, r.stderr).toBe(0);
      const report = JSON.parse(r.stdout).report;
      expect(report.method).toBe('gptq');
      expect(!!report.awqScales).toBe(awqScales);
    }
  });
});
