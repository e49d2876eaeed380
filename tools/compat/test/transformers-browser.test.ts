import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBundle } from '@alki/bundle';
import { serveStatic, type StaticServer } from '@alki/eval';
import { stories260K, tempDir } from '../../fixtures/index.js';
import { alkiGreedy, buildCompatBundles, reference } from './bundles.js';
import { hasChromium, launchChromium } from '../../fixtures/chromium.js';

const work = tempDir('alki-compat-web-');
const transformersDist = dirname(fileURLToPath(import.meta.resolve('@huggingface/transformers')));
// The WASM files of the onnxruntime-web build that transformers.js bundles (served locally: no CDN).
const ortDist = dirname(createRequire(join(transformersDist, 'x.js')).resolve('onnxruntime-web'));

const PAGE = `<!doctype html><meta charset="utf-8"><title>transformers.js × Alki</title><link rel="icon" href="data:,">
<script type="module">
import { AutoModelForCausalLM, env, Tensor } from '/tjs/transformers.js';
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = '/models/';
env.useBrowserCache = false;
env.backends.onnx.wasm.wasmPaths = { mjs: '/ort/ort-wasm-simd-threaded.asyncify.mjs', wasm: '/ort/ort-wasm-simd-threaded.asyncify.wasm' };
window.greedy = async (name, ids, n, device) => {
  const model = await AutoModelForCausalLM.from_pretrained(name, { device });
  const input_ids = new Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]);
  const attention_mask = new Tensor('int64', new BigInt64Array(ids.length).fill(1n), [1, ids.length]);
  const out = await model.generate({ input_ids, attention_mask, max_new_tokens: n, min_new_tokens: n, do_sample: false });
  await model.dispose();
  return out.tolist()[0].slice(ids.length).map(Number);
};
window.ready = true;
</script>`;

describe.skipIf(!stories260K || !hasChromium)('@huggingface/transformers in headless Chromium (WASM and WebGPU) opens Alki bundles unchanged', () => {
  let bundles: { fp32: string; int4: string };
  let server: StaticServer;
  let browser: Awaited<ReturnType<typeof launchChromium>>;
  const requested: string[] = [];
  const ref = stories260K ? reference(stories260K) : undefined;
  beforeAll(async () => {
    bundles = await buildCompatBundles(stories260K!, work.dir);
    server = await serveStatic({
      folders: { '/models/': work.dir, '/tjs/': transformersDist, '/ort/': ortDist },
      pages: { '/': { type: 'text/html; charset=utf-8', body: PAGE } },
    });
    browser = await launchChromium({ webgpu: true });
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    work.cleanup();
  });

  async function greedyInPage(name: string, device: 'wasm' | 'webgpu' = 'wasm'): Promise<number[]> {
    const page = await browser.ctx.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('request', (r) => requested.push(r.url()));
    try {
      await page.goto(`${server.url}/`);
      await page.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true, undefined, { timeout: 60_000 });
      const ids = await page.evaluate(
        ([n, p, k, d]) => (window as unknown as { greedy: (a: string, b: number[], c: number, d: string) => Promise<number[]> }).greedy(n, p, k, d),
        [name, ref!.prompt_ids, ref!.n_new_tokens, device] as const,
      );
      expect(errors).toEqual([]);
      return ids;
    } finally {
      await page.close();
    }
  }

  it("greedy-generates run.c's reference continuation from the fp32 bundle", async () => {
    expect(await greedyInPage('s260k-fp32')).toEqual(ref!.greedy_ids);
    // Nothing outside this server was asked for (no CDN), and everything asked for was there.
    expect(requested.filter((u) => !u.startsWith(`${server.url}/`) && !u.startsWith('data:') && !u.startsWith(`blob:${server.url}/`))).toEqual([]);
    expect(server.log.filter((r) => r.status !== 200)).toEqual([]);
  });

  it('greedy-generates the same ids as alki run from the int4 bundle, its external data fetched by name', async () => {
    const ours = await alkiGreedy(readBundle(bundles.int4).modelPath, ref!.prompt_ids, ref!.n_new_tokens);
    expect(await greedyInPage('s260k-int4')).toEqual(ours);
    expect(server.log.map((r) => r.path)).toContain('/models/s260k-int4/onnx/model_q4.onnx_data');
  });

  // Chromium's software adapter (SwiftShader): the WebGPU kernels, not a GPU's speed.
  it('WebGPU: the fp32 bundle gives the reference continuation, the int4 one the ids of alki run', async () => {
    expect(await greedyInPage('s260k-fp32', 'webgpu')).toEqual(ref!.greedy_ids);
    const ours = await alkiGreedy(readBundle(bundles.int4).modelPath, ref!.prompt_ids, ref!.n_new_tokens);
    expect(await greedyInPage('s260k-int4', 'webgpu')).toEqual(ours);
  }, 600_000);
});
