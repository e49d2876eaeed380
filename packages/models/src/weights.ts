import { closeSync, existsSync, fstatSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { isAbsolute, join, normalize } from 'node:path';
import { AlkiError, fsError, showValue } from '@alki/core';
import { READ_NONBLOCK } from '@alki/core/node';
import { isPickleCheckpoint, PICKLE_HINT } from './pickle.js';
import { decodeFloat, readSafetensorsBytes, readSafetensorsHeader, type SafetensorsEntry } from './safetensors.js';

/** A weight read from a checkpoint, as float32. */
export interface Weight {
  shape: number[];
  data: Float32Array;
}

/**
 * The tensors of a checkpoint, single-file or sharded. Weights are read on
 * demand, so that a model is never held twice in memory.
 */
export class WeightStore {
  private readonly entries = new Map<string, { entry: SafetensorsEntry; path: string }>();

  constructor(readonly files: string[]) {
    for (const path of files) {
      const header = readSafetensorsHeader(path);
      for (const [name, entry] of header.entries) this.entries.set(name, { entry, path });
    }
  }

  /** Opens `model.safetensors` or the shards named in `model.safetensors.index.json`. */
  static open(dir: string): WeightStore {
    const single = join(dir, 'model.safetensors');
    const index = join(dir, 'model.safetensors.index.json');
    if (existsSync(index)) {
      const map = readWeightMap(index);
      const shards = [...new Set(Object.values(map))].sort();
      for (const s of shards) {
        if (!isShardName(s)) {
          throw new AlkiError(
            'CORRUPT_SAFETENSORS',
            `${index} names a shard outside the model folder: ${showValue(s)}`,
            'shards must be files beside the index; download the model again',
          );
        }
      }
      for (const s of shards) {
        if (!existsSync(join(dir, s)))
          throw new AlkiError('NOT_FOUND', `shard ${cut(s)} listed in ${index} is missing`, 'download the complete model (all shards)');
      }
      const store = new WeightStore(shards.map((s) => join(dir, s)));
      for (const name of Object.keys(map)) {
        if (!store.has(name))
          throw new AlkiError(
            'CORRUPT_SAFETENSORS',
            `tensor ${showValue(name)} is listed in ${index} but missing from ${cut(map[name])}`,
            'download the model again',
          );
      }
      return store;
    }
    if (existsSync(single)) return new WeightStore([single]);
    const pickles = readdirSync(dir).filter(isPickleCheckpoint);
    if (pickles.length)
      throw new AlkiError('NOT_A_MODEL', `${dir} holds only pickle checkpoints (${pickles.slice(0, 3).join(', ')}), no safetensors`, PICKLE_HINT);
    throw new AlkiError(
      'NOT_A_MODEL',
      `no weights in ${dir}: expected model.safetensors or model.safetensors.index.json`,
      "Alki reads safetensors checkpoints; convert .bin/.pt files with transformers' save_pretrained(safe_serialization=True)",
    );
  }

  names(): string[] {
    return [...this.entries.keys()];
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  shape(name: string): number[] {
    return this.lookup(name).entry.shape;
  }

  dtype(name: string): string {
    return this.lookup(name).entry.dtype;
  }

  /** Throws unless the weight exists with shape `expect` (without reading its values). */
  checkShape(name: string, expect: number[]): void {
    const { entry } = this.lookup(name);
    if (expect.length !== entry.shape.length || expect.some((d, i) => d !== entry.shape[i])) {
      throw new AlkiError(
        'BAD_CONFIG',
        `weight "${name}" has shape [${entry.shape}] but config.json implies [${expect}]`,
        'the checkpoint does not match its config.json',
      );
    }
  }

  /** Reads a weight as float32, checking its shape when `expectShape` is given. */
  get(name: string, expectShape?: number[]): Weight {
    const { entry, path } = this.lookup(name);
    if (expectShape) this.checkShape(name, expectShape);
    return { shape: entry.shape, data: decodeFloat(entry, readSafetensorsBytes(entry, path)) };
  }

  private lookup(name: string) {
    const e = this.entries.get(name);
    if (!e)
      throw new AlkiError(
        'MISSING_WEIGHT',
        `weight "${name}" is missing from the checkpoint`,
        'the checkpoint does not match its config.json, or the architecture uses other tensor names',
      );
    return e;
  }
}

/** Index files above this are not an index (a 1000-shard, 100k-tensor index is a few MB). */
const MAX_INDEX_BYTES = 64 * 1024 * 1024;

/** A string for an error message, shortened. */
function cut(s: string, max = 100): string {
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/** A shard name that stays in the model folder: relative, no `..`, not the folder itself, no NUL. */
function isShardName(s: string): boolean {
  if (s === '' || s.includes('\0') || s.includes('\\') || isAbsolute(s) || /^[a-zA-Z]:/.test(s)) return false;
  const n = normalize(s);
  return n !== '.' && n !== '..' && !n.startsWith('../') && !n.split('/').includes('..') && !n.endsWith('/');
}

/** Reads the `weight_map` of model.safetensors.index.json: an object of tensor name → shard file name. */
function readWeightMap(index: string): Record<string, string> {
  const bad = (what: string) => new AlkiError('CORRUPT_SAFETENSORS', `${index} ${what}`, 'the index is damaged: download the model again');
  let text: string;
  let fd: number | undefined;
  try {
    fd = openSync(index, READ_NONBLOCK);
    const stat = fstatSync(fd);
    if (!stat.isFile()) throw bad('is not a regular file (a folder, pipe or device)');
    if (stat.size > MAX_INDEX_BYTES) throw bad(`has ${stat.size} bytes, too many for a shard index`);
    text = readFileSync(fd, 'utf8');
  } catch (e) {
    throw fsError(e, `reading ${index}`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw bad('is not valid JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad('is not a JSON object');
  const map = (json as { weight_map?: unknown }).weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) throw bad('has no weight_map object');
  for (const [name, shard] of Object.entries(map)) {
    if (typeof shard !== 'string') throw bad(`maps tensor ${showValue(name)} to ${showValue(shard)}, not to a file name`);
  }
  return map as Record<string, string>;
}
