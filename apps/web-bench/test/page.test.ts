import { cpSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildBundle } from '@alki/bundle';
import { evaluateTargets, runBrowserBench, serveStatic, type EvalTarget, type StaticServer } from '@alki/eval';
import { GraphBuilder, DataType, createModel, writeModelFile } from '@alki/onnx';
import { hasChromium, launchChromium } from '../../../tools/fixtures/chromium.js';
import { repoRoot, stories260K, tempDir, tinyStoriesText } from '../../../tools/fixtures/index.js';
import { webBenchDir } from '../index.js';

const work = tempDir('alki-web-bench-');
afterAll(() => work.cleanup());
const fp32 = join(work.dir, 'fp32');
const int4 = join(work.dir, 'int4');
const int4Head4 = join(work.dir, 'int4-head4');

function target(dir: string, name: string, method: string, bits: number): EvalTarget {
  const m = JSON.parse(readFileSync(join(dir, 'alki.json'), 'utf8'));
  const modelBytes = [m.model.path, ...m.model.externalData].reduce((s: number, p: string) => s + statSync(join(dir, p)).size, 0);
  return { name, dir, modelPath: join(dir, m.model.path), method, bits, modelBytes, bundleBytes: modelBytes };
}

describe.skipIf(!stories260K || !tinyStoriesText || !hasChromium)('the web bench measures stories260K in Chromium as Node does', () => {
  beforeAll(async () => {
    await buildBundle({ modelDir: stories260K!, out: fp32, quantize: { method: 'none' } });
    await buildBundle({ modelDir: stories260K!, out: int4, quantize: { method: 'rtn', bits: 4 } });
    await buildBundle({ modelDir: stories260K!, out: int4Head4, quantize: { method: 'rtn', bits: 4, headBits: 4 } });
  });

  // Chromium's software adapter (SwiftShader) runs onnxruntime-web's WebGPU kernels, slowly: short windows.
  it('WebGPU: an int4 bundle (1-D zero points, 4-bit head) gives the WASM perplexity within 1e-4', async () => {
    const o = { pageDir: webBenchDir, bundleDir: int4Head4, textPath: tinyStoriesText!, metrics: ['perplexity' as const], maxWindows: 4, context: 64 };
    const gpu = await runBrowserBench({ ...o, backend: 'webgpu', webgpuAdapter: 'swiftshader' });
    const cpu = await runBrowserBench({ ...o, backend: 'wasm' });
    expect(gpu.browser).toMatchObject({ backend: 'webgpu', gpu: expect.stringMatching(/swiftshader/) });
    expect(Math.abs(gpu.evaluations[0].quality!.perplexity / cpu.evaluations[0].quality!.perplexity - 1)).toBeLessThan(1e-4);
  }, 900_000);

  it("WebGPU and an 8-bit head: says onnxruntime-web's kernel runs 2 and 4 bits only, and what to do", async () => {
    await expect(
      runBrowserBench({
        pageDir: webBenchDir,
        bundleDir: int4,
        metrics: ['speed'],
        backend: 'webgpu',
        webgpuAdapter: 'swiftshader',
        speed: { runs: 1, warmupRuns: 0, promptTokens: 4, newTokens: 2 },
      }),
    ).rejects.toThrow(/runs only 2- and 4-bit weights.*8-bit layers/);
  });

  it('alki-ppl-v1 on 100 windows: fp32 equal within 1e-3 relative, int4 within 0.5%', async () => {
    const web = await runBrowserBench({
      pageDir: webBenchDir,
      bundleDir: int4,
      baselineDir: fp32,
      textPath: tinyStoriesText!,
      metrics: ['perplexity'],
      maxWindows: 100,
      threads: 2,
    });
    const node = await evaluateTargets([target(int4, 'int4', 'rtn', 4)], {
      metrics: ['perplexity'],
      baseline: target(fp32, 'fp32', 'none', 32),
      textPath: tinyStoriesText!,
      maxWindows: 100,
      vocabSize: 512,
      maxPositions: 512,
    });
    expect(web.evaluations[0].quality!.windows).toBe(100);
    expect(web.evaluations[0].quality!.textSource).toBe(node.evaluations[0].quality!.textSource);
    const rel = (a: number, b: number) => Math.abs(a / b - 1);
    expect(rel(web.baseline!.quality!.perplexity, node.baseline!.quality!.perplexity)).toBeLessThan(1e-3);
    expect(rel(web.evaluations[0].quality!.perplexity, node.evaluations[0].quality!.perplexity)).toBeLessThan(5e-3);
    expect(web.browser).toMatchObject({ backend: 'wasm', threads: 2, crossOriginIsolated: true, onnxruntimeWeb: '1.30.0' });
  }, 900_000); // ~30 s alone; CI runs every package's tests at once on 2 cores

  it('measures speed, session creation and WASM memory through the CLI runner, with the paths of the bundle folders', async () => {
    const web = await runBrowserBench({
      pageDir: webBenchDir,
      bundleDir: int4,
      baselineDir: fp32,
      metrics: ['speed', 'memory'],
      speed: { runs: 1, warmupRuns: 0, promptTokens: 32, newTokens: 16 },
    });
    expect(web.evaluations[0].speed!.decodeTokensPerSecond.median).toBeGreaterThan(0);
    expect(web.evaluations[0].speed!.loadMs).toBeGreaterThan(0);
    expect(web.evaluations[0].memory!.peakRssBytes).toBeGreaterThan(1e6);
    expect(web.evaluations[0].target).toMatchObject({ dir: int4, modelPath: join(int4, 'onnx', 'model_q4.onnx') });
    expect(web.machine.node).toBe(process.version);
  });

  it('the page shows the table and charts of the HTML report, fetches nothing from elsewhere, and is screenshotted', async () => {
    const server = await serveStatic({
      folders: { '/bundles/': work.dir, '/': webBenchDir },
      pages: { '/text/tinystories.txt': { type: 'text/plain; charset=utf-8', body: readFileSync(tinyStoriesText!, 'utf8') } },
    });
    const browser = await launchChromium();
    try {
      const page = await browser.ctx.newPage();
      await page.setViewportSize({ width: 1100, height: 900 });
      const requests: string[] = [];
      page.on('request', (r) => requests.push(r.url()));
      await page.goto(
        `${server.url}/index.html?bundle=/bundles/int4/&baseline=/bundles/fp32/&text=/text/tinystories.txt&maxWindows=4&runs=1&warmupRuns=0&promptTokens=32&newTokens=16&threads=2&auto=1`,
      );
      await page.waitForFunction(() => ['error', 'done'].includes((window as unknown as { __alki: { state: string } }).__alki.state), undefined, {
        timeout: 300_000,
      });
      expect(await page.evaluate(() => (window as unknown as { __alki: { state: string } }).__alki.state)).toBe('done');
      const report = page.frameLocator('#report');
      expect(await report.locator('#comparison tbody tr').count()).toBe(2);
      expect(await report.locator('#chart-ppl-size circle').count()).toBe(2);
      expect(await report.locator('#chart-decode rect').count()).toBe(2);
      expect(await report.locator('body').innerText()).toMatch(/onnxruntime-web 1\.30\.0/);
      expect(requests.filter((u) => !u.startsWith(`${server.url}/`) && !u.startsWith('data:') && !u.startsWith('blob:') && u !== 'about:srcdoc')).toEqual([]);
      const shot = await page.screenshot({ fullPage: true });
      expect(shot.byteLength).toBeGreaterThan(30_000);
      // docs/web-bench.png is this screenshot: ALKI_UPDATE_SCREENSHOT=1 pnpm --filter @alki/web-bench test rewrites it.
      if (process.env.ALKI_UPDATE_SCREENSHOT) writeFileSync(join(repoRoot, 'docs', 'web-bench.png'), shot);
    } finally {
      await browser.close();
      await server.close();
    }
  }, 600_000);
});

describe.skipIf(!stories260K || !hasChromium)('the web bench page explains bad input', () => {
  let server: StaticServer;
  let browser: Awaited<ReturnType<typeof launchChromium>>;
  const bad = join(work.dir, 'bad');
  beforeAll(async () => {
    if (!existsSync(fp32)) await buildBundle({ modelDir: stories260K!, out: fp32, quantize: { method: 'none' } });
    // A bundle whose alki.json declares 5 GB of weights (nothing that large is read).
    mkdirSync(join(bad, 'huge'), { recursive: true });
    writeFileSync(
      join(bad, 'huge', 'alki.json'),
      JSON.stringify({
        schemaVersion: 1,
        model: { path: 'onnx/model.onnx', externalData: ['onnx/model.onnx_data'] },
        files: [
          { path: 'onnx/model.onnx', bytes: 1000 },
          { path: 'onnx/model.onnx_data', bytes: 5e9 },
        ],
      }),
    );
    // A bundle whose graph uses an op onnxruntime-web has no kernel for.
    cpSync(fp32, join(bad, 'op'), { recursive: true });
    const b = new GraphBuilder();
    const x = b.input('input_ids', DataType.INT64, ['batch', 'seq']);
    b.node('FancyAttention', [x], {}, { domain: 'com.microsoft', outputs: ['logits'] });
    b.output('logits', DataType.FLOAT, ['batch', 'seq', 512]);
    writeModelFile(join(bad, 'op', 'onnx', 'model.onnx'), createModel(b.build(), { opsets: { '': 17, 'com.microsoft': 1 } }));
    server = await serveStatic({ folders: { '/bundles/': work.dir, '/': webBenchDir } });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  async function pageError(query: string): Promise<{ code: string; message: string; hint?: string }> {
    const page = await browser.ctx.newPage();
    try {
      await page.goto(`${server.url}/index.html?${query}&auto=1`);
      await page.waitForFunction(() => ['error', 'done'].includes((window as unknown as { __alki: { state: string } }).__alki.state), undefined, {
        timeout: 120_000,
      });
      const s = await page.evaluate(
        () => (window as unknown as { __alki: { state: string; error?: { code: string; message: string; hint?: string } } }).__alki,
      );
      expect(s.state).toBe('error');
      expect(await page.locator('#error').isVisible()).toBe(true);
      return s.error!;
    } finally {
      await page.close();
    }
  }

  it('a bundle URL that answers 404', async () => {
    const e = await pageError('bundle=/bundles/nothing-here/');
    expect(e.code).toBe('NOT_FOUND');
    expect(e.message).toMatch(/nothing-here\/alki\.json answered 404/);
    expect(e.hint).toMatch(/folder that holds alki\.json/);
  });

  it('a model too large for WASM', async () => {
    const e = await pageError('bundle=/bundles/bad/huge/');
    expect(e.code).toBe('TOO_LARGE');
    expect(e.message).toMatch(/5\.00 GB of model files, more than the 4 GB a WebAssembly memory can address/);
  });

  it('an op the web runtime lacks is named, with a suggestion', async () => {
    const e = await pageError('bundle=/bundles/bad/op/');
    expect(e.code).toBe('RUNTIME');
    expect(e.message).toMatch(/FancyAttention/);
    expect(e.hint).toMatch(/--target browser-wasm|--backend/);
  });

  it('WebGPU asked of a browser without it', async () => {
    const e = await pageError('bundle=/bundles/fp32/&backend=webgpu');
    expect(e.message).toMatch(/no WebGPU|no adapter/);
    expect(e.hint).toMatch(/--backend wasm/);
  });
});
