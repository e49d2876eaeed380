import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { AlkiError, onInterrupt, throwIfAborted, type ProgressCallback } from '@alki/core';
import type { BrowserContext } from 'playwright-core';
import type { BrowserBackend, BrowserReport } from './browser-bench.js';
import type { MetricName } from './options.js';
import { readEvalText } from './eval-text.js';
import { serveStatic } from './static-server.js';
import { machineInfo } from './speed.js';

export interface BrowserRunOptions {
  /** The built web-bench page (`webBenchDir` of @alki/web-bench). */
  pageDir: string;
  /** Bundle folder to measure, and optionally its baseline. */
  bundleDir: string;
  baselineDir?: string;
  /** Evaluation text file (served to the page). */
  textPath?: string;
  backend?: BrowserBackend;
  threads?: number;
  metrics: MetricName[];
  context?: number;
  maxWindows?: number;
  speed?: { promptTokens?: number; newTokens?: number; runs?: number; warmupRuns?: number };
  /** Chromium or Chrome to drive (default: $CHROMIUM_PATH, then the usual install paths). */
  chromiumPath?: string;
  /** Save a PNG of the page with its results here. */
  screenshotPath?: string;
  /**
   * WebGPU adapter: the browser's own (default), or 'swiftshader', Chromium's software one (CI machines without a
   * GPU; it runs the WebGPU kernels, at no GPU's speed). Env ALKI_WEBGPU_ADAPTER.
   */
  webgpuAdapter?: 'default' | 'swiftshader';
  /** Give up after this long (default 30 minutes). */
  timeoutMs?: number;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
}

const CHROMIUM_CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome', '/usr/bin/google-chrome-stable', '/snap/bin/chromium'];

/** The Chromium a browser run drives, or a clear error saying how to get one. */
export function findChromium(explicit?: string): string {
  const path = explicit ?? process.env.CHROMIUM_PATH ?? CHROMIUM_CANDIDATES.find((p) => existsSync(p));
  if (!path || !existsSync(path)) {
    throw new AlkiError(
      'NOT_FOUND',
      `no Chromium found${path ? ` at ${path}` : ''} for the browser benchmark`,
      'install Chromium (Debian/Ubuntu: `apt install chromium`) or set CHROMIUM_PATH to a Chromium or Chrome binary',
    );
  }
  return path;
}

/**
 * `alki bench --browser`: serves the web-bench page and the bundle on 127.0.0.1 with the cross-origin isolation
 * headers multithreaded WASM needs, drives headless Chromium (playwright-core) through the page's `?auto=1`, and
 * returns the page's report — the same shape as the Node benchmark's, with `browser` facts added and the host's
 * CPU in `machine` (a page cannot see it).
 */
export async function runBrowserBench(o: BrowserRunOptions): Promise<BrowserReport> {
  const chromium = findChromium(o.chromiumPath);
  if (!existsSync(join(o.pageDir, 'index.html')))
    throw new AlkiError('NOT_FOUND', `the web-bench page is not built (${o.pageDir}/index.html is missing)`, 'run `pnpm build` (it builds apps/web-bench)');
  for (const d of [o.bundleDir, o.baselineDir]) {
    if (d && !existsSync(join(d, 'alki.json')))
      throw new AlkiError('BAD_BUNDLE', `${d} has no alki.json, so it is not an Alki bundle`, 'build one with `alki build <model> --out <folder>`');
  }
  const folders: Record<string, string> = { '/bundle/': o.bundleDir };
  if (o.baselineDir) folders['/baseline/'] = o.baselineDir;
  folders['/'] = o.pageDir;
  // The text is served alone (checked and read here), not its folder.
  const textUrl = o.textPath ? `/text/${encodeURIComponent(basename(o.textPath))}` : undefined;
  const pages = o.textPath ? { [decodeURIComponent(textUrl!)]: { type: 'text/plain; charset=utf-8', body: readEvalText(o.textPath) } } : {};
  const adapter = o.webgpuAdapter ?? (process.env.ALKI_WEBGPU_ADAPTER === 'swiftshader' ? 'swiftshader' : 'default');
  const server = await serveStatic({ folders, pages });
  let browser: HeadlessChromium | undefined;
  try {
    browser = await launchChromium({ executablePath: chromium, webgpu: o.backend === 'webgpu' ? adapter : undefined });
    const page = await browser.ctx.newPage();
    // A page that dies or throws before it starts must not leave us polling for 30 minutes.
    let broken: string | undefined;
    page.on('crash', () => (broken = 'the page crashed (out of memory?)'));
    page.on('pageerror', (e) => (broken ??= `the page failed: ${e.message}`));
    const q = new URLSearchParams({ bundle: '/bundle/', backend: o.backend ?? 'wasm', metrics: o.metrics.join(','), auto: '1' });
    if (o.baselineDir) q.set('baseline', '/baseline/');
    if (textUrl) q.set('text', textUrl);
    if (o.threads) q.set('threads', String(o.threads));
    for (const [k, v] of Object.entries({ context: o.context, maxWindows: o.maxWindows, ...o.speed })) if (v !== undefined) q.set(k, String(v));
    await page.goto(`${server.url}/index.html?${q}`);
    const deadline = Date.now() + (o.timeoutMs ?? 30 * 60_000);
    const startBy = Date.now() + 60_000;
    let last = '';
    for (;;) {
      throwIfAborted(o.signal);
      if (broken)
        throw new AlkiError('RUNTIME', `in the browser: ${broken}`, 'run it again; if it repeats, measure a smaller bundle or report it with --verbose');
      const s = (await page.evaluate(() => {
        const a = (window as unknown as { __alki?: { state: string; progress?: string; error?: { code: string; message: string; hint?: string } } }).__alki;
        return a ? { state: a.state, progress: a.progress, error: a.error } : undefined;
      })) as { state: string; progress?: string; error?: { code: string; message: string; hint?: string } } | undefined;
      if (s?.progress && s.progress !== last) o.onProgress?.({ step: 'browser', done: 0, total: 1, detail: (last = s.progress) });
      if (s?.state === 'error') throw new AlkiError((s.error?.code ?? 'RUNTIME') as never, `in the browser: ${s.error?.message}`, s.error?.hint);
      if (s?.state === 'done') break;
      if ((!s || s.state === 'idle') && Date.now() > startBy)
        throw new AlkiError(
          'RUNTIME',
          'the web-bench page did not start within a minute',
          'check that apps/web-bench is built (`pnpm build`) and that Chromium runs',
        );
      if (Date.now() > deadline)
        throw new AlkiError(
          'RUNTIME',
          `the browser benchmark did not finish in ${Math.round((o.timeoutMs ?? 1_800_000) / 60_000)} minutes (last: ${last || 'nothing'})`,
          'measure fewer windows (--max-windows) or fewer runs',
        );
      await new Promise((r) => setTimeout(r, 250));
    }
    const report = (await page.evaluate(() => (window as unknown as { __alki: { report: unknown } }).__alki.report)) as BrowserReport;
    if (o.screenshotPath) {
      await page.locator('#report').waitFor({ state: 'visible' });
      await page.waitForTimeout(200);
      writeFileSync(o.screenshotPath, await page.screenshot({ fullPage: true }));
    }
    // The page cannot see the CPU; the host can (same machine: the server is 127.0.0.1).
    const host = machineInfo();
    report.machine = { ...host, onnxruntime: report.machine.onnxruntime };
    for (const e of [...report.evaluations, ...(report.baseline ? [report.baseline] : [])]) {
      if (e.speed) e.speed.machine = report.machine;
      // Server paths back to the folders they serve.
      const local = e.target.dir === '/bundle/' ? o.bundleDir : e.target.dir === '/baseline/' && o.baselineDir ? o.baselineDir : undefined;
      if (local) {
        e.target.modelPath = join(local, e.target.modelPath.slice(e.target.dir.replace(/\/+$/, '').length + 1));
        e.target.dir = local;
      }
    }
    return report;
  } finally {
    await browser?.close().catch(() => undefined);
    await server.close();
  }
}

export interface HeadlessChromium {
  ctx: BrowserContext;
  /** Closes the browser and removes its profile. */
  close(): Promise<void>;
}

/**
 * Headless Chromium with a fresh profile (removed on close and on Ctrl-C) and no background traffic: this machine
 * reaches nothing but 127.0.0.1, and without these flags Chromium keeps dialling Google. `webgpu` turns WebGPU on
 * with the browser's own adapter ('default') or Chromium's software one ('swiftshader', for machines without a GPU).
 */
export async function launchChromium(o: { executablePath?: string; webgpu?: 'default' | 'swiftshader' } = {}): Promise<HeadlessChromium> {
  const { chromium } = await import('playwright-core');
  const profile = mkdtempSync(join(tmpdir(), 'alki-chromium-'));
  const removeProfile = () => rmSync(profile, { recursive: true, force: true });
  const removeOnInterrupt = onInterrupt(removeProfile);
  try {
    const ctx = await chromium.launchPersistentContext(profile, {
      executablePath: o.executablePath ?? findChromium(),
      headless: true,
      args: [
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--disable-quic',
        ...(process.getuid?.() === 0 ? ['--no-sandbox'] : []),
        ...(o.webgpu
          ? ['--enable-unsafe-webgpu', '--enable-features=Vulkan', ...(o.webgpu === 'swiftshader' ? ['--use-webgpu-adapter=swiftshader'] : [])]
          : ['--disable-gpu']),
      ],
    });
    return {
      ctx,
      close: async () => {
        await ctx.close();
        removeProfile();
        removeOnInterrupt();
      },
    };
  } catch (e) {
    removeProfile();
    removeOnInterrupt();
    throw e;
  }
}
