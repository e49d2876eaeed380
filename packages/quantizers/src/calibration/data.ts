import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { AlkiError } from '@alki/core';
import { DecoderSession, sampleSequences, type TextTokenizer } from '@alki/runtime';
import type { CalibrationData } from '../calibrated.js';

/** Reads a calibration file: plain text, or JSONL whose lines carry a "text" field. */
export function readCalibrationFile(path: string): string {
  if (!existsSync(path)) throw new AlkiError('NOT_FOUND', `calibration file not found: ${path}`, 'pass --calib with an existing text or JSONL file, or leave it out to calibrate on text sampled from the model');
  const raw = readFileSync(path, 'utf8');
  if (path.endsWith('.jsonl')) {
    const texts: string[] = [];
    raw.split('\n').forEach((line, i) => {
      if (!line.trim()) return;
      let obj: { text?: unknown };
      try {
        obj = JSON.parse(line);
      } catch {
        throw new AlkiError('BAD_INPUT', `${path}:${i + 1} is not valid JSON`, 'each line of a .jsonl calibration file must be an object with a "text" field');
      }
      if (typeof obj.text !== 'string') throw new AlkiError('BAD_INPUT', `${path}:${i + 1} has no "text" string`, 'each line of a .jsonl calibration file must be an object with a "text" field');
      texts.push(obj.text);
    });
    return texts.join('\n\n');
  }
  return raw;
}

/**
 * Calibration samples from text: tokenized once, cut into consecutive samples
 * of `seqLen` tokens, the first `samples` of them.
 */
export function calibrationFromText(tokenizer: TextTokenizer, text: string, o: { samples: number; seqLen: number; name?: string }): CalibrationData {
  const ids = tokenizer.encode(text);
  const available = Math.floor(ids.length / o.seqLen);
  if (available === 0) {
    throw new AlkiError('BAD_INPUT', `the calibration text has ${ids.length} tokens, fewer than one sample of ${o.seqLen}`, `use a longer text, or a smaller --calib-seqlen (at most ${ids.length})`);
  }
  const n = Math.min(o.samples, available);
  const samples = Array.from({ length: n }, (_, i) => ids.slice(i * o.seqLen, (i + 1) * o.seqLen));
  const sha256 = createHash('sha256').update(text).digest('hex');
  return { samples, source: `${o.name ?? 'text'} (sha256 ${sha256.slice(0, 12)}…)${n < o.samples ? `, only ${n} of ${o.samples} samples available` : ''}`, sha256 };
}

/** Calibration samples sampled from the (fp32) model itself: no text and no network needed. */
export async function calibrationFromModel(modelPath: string, bosTokenId: number, o: { samples: number; seqLen: number; seed?: number }): Promise<CalibrationData> {
  const session = await DecoderSession.load(modelPath);
  try {
    const samples = await sampleSequences(session, bosTokenId, o.samples, o.seqLen, o.seed ?? 0);
    return { samples, source: `sampled from the fp32 model (temperature 1, seed ${o.seed ?? 0})` };
  } finally {
    await session.release();
  }
}

export function calibrationName(path: string): string {
  return basename(path);
}
