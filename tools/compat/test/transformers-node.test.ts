import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AutoModelForCausalLM, AutoTokenizer, env, pipeline, Tensor } from '@huggingface/transformers';
import { readBundle } from '@alki/bundle';
import { stories260K, tempDir } from '../../fixtures/index.js';
import { alkiGreedy, buildCompatBundles, reference } from './bundles.js';

const work = tempDir('alki-compat-node-');
afterAll(() => work.cleanup());

/** Greedy ids from transformers.js, loading the bundle folder as it is (local files only). */
async function transformersGreedy(name: string, ids: number[], n: number): Promise<number[]> {
  const model = await AutoModelForCausalLM.from_pretrained(name);
  try {
    const input_ids = new Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]);
    const attention_mask = new Tensor('int64', new BigInt64Array(ids.length).fill(1n), [1, ids.length]);
    const out = (await model.generate({ input_ids, attention_mask, max_new_tokens: n, min_new_tokens: n, do_sample: false })) as Tensor;
    return (out.tolist() as bigint[][])[0].slice(ids.length).map(Number);
  } finally {
    await model.dispose();
  }
}

describe.skipIf(!stories260K)('@huggingface/transformers (Node) opens Alki bundles unchanged', () => {
  let bundles: { fp32: string; int4: string };
  const ref = stories260K ? reference(stories260K) : undefined;
  beforeAll(async () => {
    bundles = await buildCompatBundles(stories260K!, work.dir);
    env.allowRemoteModels = false;
    env.localModelPath = work.dir;
  });

  it('names the graphs and external data as transformers.js looks for them, and says so in config.json', () => {
    expect(readBundle(bundles.fp32).manifest.model).toMatchObject({ path: 'onnx/model.onnx', externalData: [] });
    expect(readBundle(bundles.int4).manifest.model).toMatchObject({ path: 'onnx/model_q4.onnx', externalData: ['onnx/model_q4.onnx_data'] });
    const config = (dir: string) => JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'))['transformers.js_config'];
    expect(config(bundles.fp32)).toEqual({ dtype: 'fp32' });
    expect(config(bundles.int4)).toEqual({ dtype: 'q4', use_external_data_format: { 'model_q4.onnx': 1 } });
  });

  it("tokenizes the prompt to run.c's ids", async () => {
    const tok = await AutoTokenizer.from_pretrained('s260k-fp32');
    expect(tok.encode(ref!.prompt)).toEqual(ref!.prompt_ids);
  });

  it("greedy-generates run.c's reference continuation from the fp32 bundle", async () => {
    expect(await transformersGreedy('s260k-fp32', ref!.prompt_ids, ref!.n_new_tokens)).toEqual(ref!.greedy_ids);
  });

  it("the docs' pipeline example prints run.c's text", async () => {
    const generator = await pipeline('text-generation', 's260k-fp32');
    const out = (await generator(ref!.prompt, { max_new_tokens: ref!.n_new_tokens, do_sample: false })) as { generated_text: string }[];
    expect(out[0].generated_text).toBe(ref!.full_text);
    await generator.dispose();
  });

  it('greedy-generates the same ids as alki run from the int4 bundle (external data)', async () => {
    const ours = await alkiGreedy(readBundle(bundles.int4).modelPath, ref!.prompt_ids, ref!.n_new_tokens);
    expect(await transformersGreedy('s260k-int4', ref!.prompt_ids, ref!.n_new_tokens)).toEqual(ours);
  });
});
