import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AlkiError } from '@alki/core';
import { runWorker, workerScript } from '@alki/core/node';
import type { HfModel } from '@alki/models';
import { DecoderSession, loadTokenizer } from '@alki/runtime';

/**
 * The tokenizer ships in the bundle and drives every run: it must load, encode,
 * and produce only ids the model's embedding table has. Checked before any
 * heavy work, so a truncated tokenizer.json fails the build, not the first run.
 */
export function checkTokenizer(hf: Pick<HfModel, 'dir' | 'config'>): void {
  const tok = loadTokenizer(hf.dir);
  const V = hf.config.vocabSize;
  if (tok.vocabSize > V) {
    throw new AlkiError(
      'TOKENIZER',
      `tokenizer.json in ${hf.dir} has ${tok.vocabSize} tokens but config.json's vocab_size is ${V}`,
      'the tokenizer does not belong to these weights: download the model again',
    );
  }
  let ids: number[];
  try {
    ids = tok.encode('Hello, world. 123');
  } catch (e) {
    throw new AlkiError('TOKENIZER', `tokenizer.json in ${hf.dir} loads but cannot encode text: ${(e as Error).message}`, 'download the model again', {
      cause: e,
    });
  }
  for (const id of [...ids, ...(tok.bosTokenId !== undefined ? [tok.bosTokenId] : []), ...tok.eosTokenIds]) {
    if (!Number.isInteger(id) || id < 0 || id >= V) {
      throw new AlkiError(
        'TOKENIZER',
        `the tokenizer of ${hf.dir} produces token id ${id}, outside the ${V}-token vocabulary`,
        'the tokenizer files do not belong to these weights: download the model again',
      );
    }
  }
}

/**
 * Runs the graph about to be bundled on a few tokens: every logit must be
 * finite and they must not all be equal. Damaged weights that are finite but
 * absurd (3e38, a shifted tensor) pass every structural check and would
 * otherwise make a bundle that prints one token forever.
 *
 * It runs in a child process (smoke-worker.ts), which reports its peak memory: onnxruntime keeps the memory of a released session, which would
 * add the whole model to the build's peak, and a graph that crashes onnxruntime must fail the build, not end it.
 */
export async function smokeTest(modelPath: string, ids: number[], signal?: AbortSignal): Promise<{ peakRssBytes: number }> {
  return runWorker<{ peakRssBytes: number }>(workerPath('smoke-worker.js'), [modelPath, JSON.stringify(ids)], `the test run of ${modelPath}`, signal);
}

/** One of this package's child-process entries (dist/*-worker.js). */
export function workerPath(file: string): string {
  return workerScript(typeof __dirname === 'string' ? __dirname : dirname(fileURLToPath(import.meta.url)), file, '@alki/bundle');
}

/** {@link smokeTest} in this process. */
export async function smokeTestInProcess(modelPath: string, ids: number[]): Promise<void> {
  const session = await DecoderSession.load(modelPath, { threads: 1 });
  try {
    const { logits, vocabSize } = await session.forward([ids], session.emptyCache(1), 0);
    let bad = -1;
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < logits.length; i++) {
      const v = logits[i];
      if (!Number.isFinite(v)) {
        bad = i;
        break;
      }
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    if (bad >= 0 || !(hi > lo)) {
      const what =
        bad >= 0
          ? `${Number.isNaN(logits[bad]) ? 'NaN' : 'infinite'} logits (position ${Math.floor(bad / vocabSize)})`
          : `the same logit ${lo} for every token`;
      throw new AlkiError(
        'NUMERIC',
        `the exported model computes ${what} on a ${ids.length}-token test input, so it cannot generate text`,
        "the checkpoint's weights are damaged (values far too large, or shifted bytes): download the model again; no bundle was written",
      );
    }
  } finally {
    await session.release();
  }
}
