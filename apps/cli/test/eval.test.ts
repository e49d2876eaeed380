import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stories260K, tempDir, tinyStoriesText } from '../../../tools/fixtures/index.js';
import { alki } from './helpers.js';
import { hasChromium, launchChromium } from '../../../tools/fixtures/chromium.js';

const work = tempDir('alki-eval-cli-');
afterAll(() => work.cleanup());

describe.skipIf(!stories260K || !tinyStoriesText)('alki compare / bench / build --benchmark on stories260K', () => {
  const out = join(work.dir, 'compare');

  it('compare --quick writes the table, JSON and HTML and recommends', () => {
    const r = alki(['compare', stories260K!, '--methods', 'none,rtn8,rtn4', '--quick', '--text', tinyStoriesText!, '--out', out, '--quiet']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/model\s+size\s+perplexity/);
    expect(r.stdout).toMatch(/rtn4: \d+% smaller/);
    expect(r.stdout).toMatch(/recommended: /);
    const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'));
    const names = report.evaluations.map((e: { target: { name: string } }) => e.target.name);
    expect(names).toEqual(['rtn8', 'rtn4']);
    const ppl = (n: string) => report.evaluations.find((e: { target: { name: string } }) => e.target.name === n).quality.perplexity;
    expect(ppl('rtn4')).toBeGreaterThan(ppl('rtn8'));
    expect(ppl('rtn8')).toBeGreaterThan(report.baseline.quality.perplexity);
    expect(report.evaluations[0].quality.windows).toBe(8);
    expect(report.evaluations[0].speed.runs).toBe(2);
    expect(existsSync(join(out, 'report.html'))).toBe(true);
  });

  it.skipIf(!hasChromium)('the HTML report renders in headless Chromium', async () => {
    const browser = await launchChromium();
    const ctx = browser.ctx;
    try {
      const page = await ctx.newPage();
      const requests: string[] = [];
      page.on('request', (req) => requests.push(req.url()));
      await page.goto(`file://${join(out, 'report.html')}`);
      expect(await page.locator('#comparison tbody tr').count()).toBe(3);
      expect(await page.locator('#chart-ppl-size circle').count()).toBe(3);
      expect(await page.locator('#chart-decode rect').count()).toBe(3);
      expect(await page.locator('#recommendation').innerText()).toMatch(/Recommended: /);
      const box = await page.locator('#chart-ppl-size').boundingBox();
      expect(box!.width).toBeGreaterThan(300);
      const shot = await page.screenshot({ fullPage: true });
      expect(shot.byteLength).toBeGreaterThan(10_000);
      expect(requests.filter((u) => !u.startsWith('file://'))).toEqual([]);
    } finally {
      await browser.close();
    }
  });

  it('build --benchmark stores the metrics in alki.json and README, info shows them', () => {
    const dir = join(work.dir, 'bench8');
    const r = alki([
      'build',
      stories260K!,
      '--bits',
      '8',
      '--benchmark',
      '--text',
      tinyStoriesText!,
      '--max-windows',
      '4',
      '--runs',
      '2',
      '--out',
      dir,
      '--quiet',
    ]);
    expect(r.status, r.stderr).toBe(0);
    const m = JSON.parse(readFileSync(join(dir, 'alki.json'), 'utf8'));
    for (const k of [
      'perplexity',
      'baselinePerplexity',
      'decodeTokensPerSecond',
      'prefillTokensPerSecond',
      'timeToFirstTokenMs',
      'peakRssBytes',
      'klDivergence',
      'top1Agreement',
      'baselineSizeBytes',
      'measuredOn',
    ]) {
      expect(m.metrics[k], k).toBeDefined();
    }
    expect(m.metrics.perplexity.method).toMatch(/alki-ppl-v1: 4 windows × 512 tokens, 2044 scored tokens/);
    // The CPU features that change results or speed are recorded beside the CPU's name.
    expect(m.metrics.measuredOn.value).toMatchObject({ cpu: expect.any(String), arch: expect.any(String), features: expect.any(Array) });
    expect(readFileSync(join(dir, 'README.md'), 'utf8')).toMatch(/## Benchmark[\s\S]*perplexity/);
    const info = alki(['info', dir, '--verify']);
    expect(info.status).toBe(0);
    expect(info.stdout).toMatch(/perplexity\s+3\.\d+/);
    expect(info.stdout).toMatch(/decodeTokensPerSecond/);
  });

  it('the perplexity guard fails the build with suggestions, unless --allow-degraded', () => {
    const dir = join(work.dir, 'guard');
    const r = alki([
      'build',
      stories260K!,
      '--bits',
      '4',
      '--benchmark',
      '--metrics',
      'perplexity',
      '--text',
      tinyStoriesText!,
      '--max-windows',
      '4',
      '--max-ppl-increase',
      '1%',
      '--out',
      dir,
    ]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/above the 1\.0% budget[\s\S]*no bundle was written[\s\S]*hint: use more bits/);
    expect(existsSync(dir)).toBe(false);
    const ok = alki([
      'build',
      stories260K!,
      '--bits',
      '4',
      '--benchmark',
      '--metrics',
      'perplexity',
      '--text',
      tinyStoriesText!,
      '--max-windows',
      '4',
      '--max-ppl-increase',
      '1%',
      '--allow-degraded',
      '--out',
      dir,
      '--quiet',
    ]);
    expect(ok.status, ok.stderr).toBe(0);
    expect(existsSync(join(dir, 'alki.json'))).toBe(true);
  });

  it('bench: bad text inputs and a damaged bundle give clear errors', () => {
    const b = join(out, 'rtn4');
    const missing = alki(['bench', b, '--metrics', 'perplexity', '--text', join(work.dir, 'nope.txt')]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/evaluation text not found/);
    writeFileSync(join(work.dir, 'empty.txt'), '');
    expect(alki(['bench', b, '--metrics', 'perplexity', '--text', join(work.dir, 'empty.txt')]).stderr).toMatch(/is empty/);
    writeFileSync(join(work.dir, 'short.txt'), 'Once upon a time there was a cat.');
    const short = alki(['bench', b, '--metrics', 'perplexity', '--text', join(work.dir, 'short.txt')]);
    expect(short.status).toBe(1);
    expect(short.stderr).toMatch(/fewer than one window of 512[\s\S]*hint: use a longer text, or a smaller --context/);
    const noText = alki(['bench', b, '--metrics', 'perplexity']);
    expect(noText.stderr).toMatch(/Alki ships none/);
    // Plain `alki bench <bundle>`: what needs no text, said so, and exit 0.
    const plain = alki(['bench', b, '--json', '--runs', '1', '--new-tokens', '4', '--prompt-tokens', '8']);
    expect(plain.status, plain.stderr).toBe(0);
    const report = JSON.parse(plain.stdout);
    expect(report.evaluations[0].speed).toBeDefined();
    expect(report.evaluations[0].quality).toBeUndefined();
    const cfg = join(b, 'tokenizer.json');
    const bytes = readFileSync(cfg);
    bytes[100] ^= 1;
    writeFileSync(cfg, bytes);
    const damaged = alki(['bench', b, '--metrics', 'size']);
    expect(damaged.status).toBe(1);
    expect(damaged.stderr).toMatch(/failed verification: tokenizer\.json \(sha256\)/);
  });
});
