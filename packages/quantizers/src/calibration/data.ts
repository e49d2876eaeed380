import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { AlkiError, type ProgressCallback } from '@alki/core';
import { readUtf8Text } from '@alki/core/node';
import { DecoderSession, sampleSequences, type TextTokenizer } from '@alki/runtime';
import type { CalibrationData } from './types.js';

const HINT_CALIB =
  'pass --calib with a UTF-8 text file or a JSONL file whose lines are objects with a "text" field, or leave it out to calibrate on text sampled from the model';

/** Reads a calibration file: plain text, or JSONL whose lines carry a "text" field. */
export function readCalibrationFile(path: string): string {
  if (!existsSync(path))
    throw new AlkiError(
      'NOT_FOUND',
      `calibration file not found: ${path}`,
      'pass --calib with an existing text or JSONL file, or leave it out to calibrate on text sampled from the model',
    );
  const raw = readUtf8Text(path, 'calibration file', HINT_CALIB);
  let text = raw;
  if (path.endsWith('.jsonl')) {
    const texts: string[] = [];
    const hint = 'each line of a .jsonl calibration file must be an object with a "text" field';
    let start = 0;
    for (let i = 1; start <= raw.length; i++) {
      let end = raw.indexOf('\n', start);
      if (end === -1) end = raw.length;
      const line = raw.slice(start, end);
      start = end + 1;
      if (!line.trim()) continue;
      let obj: unknown;
      try {
        obj = JSON.parse(line);
      } catch {
        throw new AlkiError('BAD_INPUT', `${path}:${i} is not valid JSON`, hint);
      }
      if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new AlkiError('BAD_INPUT', `${path}:${i} is not a JSON object`, hint);
      if (typeof (obj as { text?: unknown }).text !== 'string') throw new AlkiError('BAD_INPUT', `${path}:${i} has no "text" string`, hint);
      texts.push((obj as { text: string }).text);
    }
    text = texts.join('\n\n');
  }
  if (!text.trim()) throw new AlkiError('BAD_INPUT', `calibration file ${path} holds no text`, HINT_CALIB);
  return text;
}

/**
 * Calibration samples from text: tokenized once, cut into consecutive samples
 * of `seqLen` tokens, the first `samples` of them.
 */
export function calibrationFromText(tokenizer: TextTokenizer, text: string, o: { samples: number; seqLen: number; name?: string }): CalibrationData {
  const ids = tokenizer.encode(text);
  const available = Math.floor(ids.length / o.seqLen);
  if (available === 0) {
    throw new AlkiError(
      'BAD_INPUT',
      `the calibration text has ${ids.length} tokens, fewer than one sample of ${o.seqLen}`,
      `use a longer text, or a smaller --calib-seqlen (at most ${ids.length})`,
    );
  }
  const n = Math.min(o.samples, available);
  const samples = Array.from({ length: n }, (_, i) => ids.slice(i * o.seqLen, (i + 1) * o.seqLen));
  const sha256 = createHash('sha256').update(text).digest('hex');
  return {
    samples,
    source: `${o.name ?? 'text'} (sha256 ${sha256.slice(0, 12)}…)${n < o.samples ? `, only ${n} of ${o.samples} samples available` : ''}`,
    sha256,
  };
}

/** Calibration samples sampled from the (fp32) model itself: no text and no network needed. */
export async function calibrationFromModel(
  modelPath: string,
  bosTokenId: number,
  o: {
    samples: number;
    seqLen: number;
    seed?: number;
    onProgress?: ProgressCallback;
    signal?: AbortSignal;
    /** What the model is, for the record (default "the fp32 model"). */ label?: string;
    /**
     * onnxruntime's memory arena (default true; see SessionOptions.memoryArena). Off, together with glibc's
     * MALLOC_MMAP_THRESHOLD_ set before the process starts (as buildBundle's sampling process does for large
     * models), a long sampling's memory stops growing step by step, at some speed; either alone does not help.
     */
    memoryArena?: boolean;
  },
): Promise<CalibrationData> {
  const session = await DecoderSession.load(modelPath, { memoryArena: o.memoryArena });
  const label = o.label ?? 'the fp32 model';
  try {
    // Token by token, so that a long sampling shows its pace and ETA instead of sitting at 0/1.
    const onTokens = o.onProgress
      ? (done: number, total: number) => o.onProgress!({ step: 'calibration data', done, total, unit: 'tokens', detail: `sampling from ${label}` })
      : undefined;
    const samples = await sampleSequences(session, bosTokenId, o.samples, o.seqLen, o.seed ?? 0, 16, { onTokens, signal: o.signal });
    return { samples, source: `sampled from ${label} (temperature 1, seed ${o.seed ?? 0})` };
  } finally {
    await session.release();
  }
}
