import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hasChromium } from '../../../tools/fixtures/chromium.js';
import { stories260K, tempDir, tinyStoriesText } from '../../../tools/fixtures/index.js';
import { alki } from './helpers.js';

const work = tempDir('alki-cli-browser-');
afterAll(() => work.cleanup());
const out = (n: string) => join(work.dir, n);

describe.skipIf(!stories260K || !tinyStoriesText || !hasChromium)('alki bench --browser', () => {
  beforeAll(() => {
    for (const [name, q] of [
      ['fp32', ['--quantize', 'none']],
      ['rtn4', ['--quantize', 'rtn', '--bits', '4']],
    ] as const) {
      const r = alki(['build', stories260K!, ...q, '--out', out(name), '--quiet']);
      expect(r.status, r.stderr).toBe(0);
    }
  });

  it('measures in headless Chromium and prints and stores the result as the Node bench does (--json, --report, --baseline)', () => {
    const r = alki([
      'bench',
      out('rtn4'),
      '--browser',
      '--baseline',
      out('fp32'),
      '--text',
      tinyStoriesText!,
      '--max-windows',
      '4',
      '--runs',
      '1',
      '--prompt-tokens',
      '16',
      '--new-tokens',
      '8',
      '--threads',
      '2',
      '--json',
      '--report',
      out('web.html'),
    ]);
    expect(r.status, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.browser).toMatchObject({ backend: 'wasm', threads: 2, crossOriginIsolated: true });
    expect(report.baseline.target.name).toBe('baseline fp32');
    expect(report.evaluations[0].quality.windows).toBe(4);
    expect(report.evaluations[0].quality.agreement.top1).toBeGreaterThan(0.5);
    expect(report.evaluations[0].speed).toMatchObject({ executionProvider: 'wasm', threads: 2, promptTokens: 16, newTokens: 8 });
    expect(report.evaluations[0].memory.peakRssBytes).toBeGreaterThan(1e6);
    // The host's CPU (a page cannot see it), with the browser's runtime.
    expect(report.machine.onnxruntime).toMatch(/^web 1\.30/);
    expect(report.machine.cpu).not.toMatch(/browser/);
    expect(report.ratios['rtn int4 g32'].perplexityIncrease).toBeGreaterThan(0);
    const html = readFileSync(out('web.html'), 'utf8');
    expect(html).toMatch(/onnxruntime-web 1\.30/);
    expect(html).toMatch(/WebAssembly memory/);
  });

  it('refuses --backend and --screenshot without --browser', () => {
    for (const flag of [
      ['--backend', 'wasm'],
      ['--screenshot', out('x.png')],
    ]) {
      const r = alki(['bench', out('rtn4'), ...flag]);
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/only applies to --browser/);
    }
    expect(existsSync(out('x.png'))).toBe(false);
  });
});
