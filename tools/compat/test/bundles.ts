import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildBundle } from '@alki/bundle';
import { DecoderSession, generate } from '@alki/runtime';

export interface Reference {
  prompt: string;
  prompt_ids: number[];
  greedy_ids: number[];
  full_text: string;
  n_new_tokens: number;
}

/** run.c's reference continuation of stories260K (../shared/fixtures/stories260K/reference.json). */
export function reference(stories260K: string): Reference {
  return JSON.parse(readFileSync(join(stories260K, 'reference.json'), 'utf8')) as Reference;
}

/** The bundles other runtimes must open: fp32 and RTN int4, the second with its weights as external data. */
export async function buildCompatBundles(stories260K: string, modelsDir: string): Promise<{ fp32: string; int4: string }> {
  const fp32 = join(modelsDir, 's260k-fp32');
  const int4 = join(modelsDir, 's260k-int4');
  await buildBundle({ modelDir: stories260K, out: fp32, quantize: { method: 'none' } });
  await buildBundle({ modelDir: stories260K, out: int4, quantize: { method: 'rtn', bits: 4 }, externalData: 'always' });
  return { fp32, int4 };
}

/** What `alki run` generates greedily from `ids` with the bundle's graph. */
export async function alkiGreedy(modelPath: string, ids: number[], n: number): Promise<number[]> {
  const session = await DecoderSession.load(modelPath, { threads: 1 });
  try {
    return (await generate(session, ids, { maxNewTokens: n, stopTokenIds: [] })).ids;
  } finally {
    await session.release();
  }
}
