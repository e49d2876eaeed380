import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { encodeModel } from '@alki/onnx';
import { openHfModel, exportModel } from '../src/index.js';
import { stories260K } from '../../../tools/fixtures/index.js';
it('probe', async () => {
  const m = openHfModel(stories260K!);
  const { model } = exportModel(m);
  const bytes = encodeModel(model);
  const s = await ort.InferenceSession.create(bytes);
  const ref = JSON.parse(readFileSync(join(stories260K!, 'reference.json'), 'utf8'));
  const ids = ref.prompt_ids;
  const feeds: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]),
    attention_mask: new ort.Tensor('int64', BigInt64Array.from(ids.map(() => 1n)), [1, ids.length]),
    position_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map((_: number, i: number) => BigInt(i))), [1, ids.length]),
  };
  for (let i = 0; i < 5; i++) for (const kv of ['key', 'value']) feeds[`past_key_values.${i}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [1, 4, 0, 8]);
  const out = await s.run(feeds);
  const logits = out.logits.data as Float32Array;
  const last = logits.subarray(4 * 512, 5 * 512);
  let maxd = 0;
  for (let i = 0; i < 512; i++) maxd = Math.max(maxd, Math.abs(last[i] - ref.last_prompt_position_logits[i]));
  console.log('maxdiff', maxd, Array.from(last.slice(0, 4)), ref.last_prompt_position_logits_first8.slice(0, 4));
});
