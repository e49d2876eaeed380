import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AlkiError } from '@alki/core';
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
      let map: Record<string, string>;
      try {
        map = JSON.parse(readFileSync(index, 'utf8')).weight_map;
      } catch {
        throw new AlkiError('CORRUPT_SAFETENSORS', `${index} is not valid JSON`, 'download the model again');
      }
      if (!map || typeof map !== 'object') throw new AlkiError('CORRUPT_SAFETENSORS', `${index} has no weight_map`, 'download the model again');
      const shards = [...new Set(Object.values(map))].sort();
      for (const s of shards) {
        if (s.includes('..') || s.startsWith('/')) throw new AlkiError('CORRUPT_SAFETENSORS', `${index} names a shard outside the folder: ${s}`);
        if (!existsSync(join(dir, s))) throw new AlkiError('NOT_FOUND', `shard ${s} listed in model.safetensors.index.json is missing`, 'download the complete model (all shards)');
      }
      const store = new WeightStore(shards.map((s) => join(dir, s)));
      for (const name of Object.keys(map)) {
        if (!store.has(name)) throw new AlkiError('CORRUPT_SAFETENSORS', `tensor "${name}" is listed in the index but missing from ${map[name]}`, 'download the model again');
      }
      return store;
    }
    if (existsSync(single)) return new WeightStore([single]);
    throw new AlkiError('NOT_A_MODEL', `no weights in ${dir}: expected model.safetensors or model.safetensors.index.json`, 'Alki reads safetensors checkpoints; convert .bin/.pt files with transformers\' save_pretrained(safe_serialization=True)');
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

  /** Reads a weight as float32, checking its shape when `expectShape` is given. */
  get(name: string, expectShape?: number[]): Weight {
    const { entry, path } = this.lookup(name);
    if (expectShape && (expectShape.length !== entry.shape.length || expectShape.some((d, i) => d !== entry.shape[i]))) {
      throw new AlkiError('BAD_CONFIG', `weight "${name}" has shape [${entry.shape}] but config.json implies [${expectShape}]`, 'the checkpoint does not match its config.json');
    }
    return { shape: entry.shape, data: decodeFloat(entry, readSafetensorsBytes(entry, path)) };
  }

  private lookup(name: string) {
    const e = this.entries.get(name);
    if (!e) throw new AlkiError('MISSING_WEIGHT', `weight "${name}" is missing from the checkpoint`, 'the checkpoint does not match its config.json, or the architecture uses other tensor names');
    return e;
  }
}
