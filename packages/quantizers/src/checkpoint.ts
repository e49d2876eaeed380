import { existsSync, mkdirSync, readFileSync, renameSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { AlkiError } from '@alki/core';
import { DataType, createModel, floatTensor, readModelFile, uint8Tensor, writeModelFile, GraphBuilder, type Tensor } from '@alki/onnx';
import type { BlockwiseQuantized } from './blockwise.js';
import type { CalibrationData } from './calibration/types.js';

/** One finished layer: its linears' codes (with their relative errors) and the other weights it rewrote (norms). */
export interface CheckpointLayer {
  codes: { name: string; qw: BlockwiseQuantized; error: number }[];
  tensors: Tensor[];
}

/** What an interrupted calibration finished: layers 0 … done − 1, and the inputs of layer `done`. */
export interface CheckpointState {
  done: number;
  /** Read one at a time as they are iterated: a 7B model's recorded codes are ~5 GB. */
  layers: Iterable<CheckpointLayer>;
  hidden: Float32Array[];
}

/**
 * Where a calibrated quantization (AWQ, GPTQ) records each finished layer, so that an interrupted run restarts
 * after its last finished layer with identical results (`alki build --resume`).
 */
export interface LayerCheckpoint {
  /** The finished layers, or undefined when there is nothing to resume. */
  load(): CheckpointState | undefined;
  /** Records layer `index` as finished, with the next layer's inputs. */
  save(index: number, layer: CheckpointLayer, hidden: Float32Array[]): void;
}

const STATE = 'state.json';

/**
 * A {@link LayerCheckpoint} in a folder: one ONNX file per finished layer (its codes, scales, zero points and
 * rewritten weights as initializers, their shapes in metadata), the hidden states between layers, and state.json,
 * written last (by rename) so that a layer counts as finished only once all of it is on disk.
 */
export class FolderCheckpoint implements LayerCheckpoint {
  constructor(readonly dir: string) {}

  load(): CheckpointState | undefined {
    const statePath = join(this.dir, STATE);
    if (!existsSync(statePath)) return undefined;
    const bad = (what: string) =>
      new AlkiError('BAD_INPUT', `the checkpoint in ${this.dir} is damaged (${what})`, 'build again without --resume; the checkpoint is replaced');
    let state: { done?: unknown; batches?: unknown };
    try {
      state = JSON.parse(readFileSync(statePath, 'utf8'));
    } catch {
      throw bad('state.json is not JSON');
    }
    const { done, batches } = state;
    if (!Number.isSafeInteger(done) || (done as number) < 1 || !Array.isArray(batches) || !batches.every((n) => Number.isSafeInteger(n) && n > 0))
      throw bad('state.json');
    const read = (i: number) => this.readLayer(i, bad);
    const layers = (function* () {
      for (let i = 0; i < (done as number); i++) yield read(i);
    })();
    const raw = readFileSync(join(this.dir, 'hidden.bin'));
    const all = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
    const total = (batches as number[]).reduce((a, b) => a + b, 0);
    if (all.length !== total) throw bad(`hidden.bin holds ${all.length} values, state.json says ${total}`);
    const hidden: Float32Array[] = [];
    let at = 0;
    for (const n of batches as number[]) {
      hidden.push(all.slice(at, at + n));
      at += n;
    }
    return { done: done as number, layers, hidden };
  }

  save(index: number, layer: CheckpointLayer, hidden: Float32Array[]): void {
    this.prepare();
    const b = new GraphBuilder('checkpoint');
    const meta = layer.codes.map(({ name, qw, error }, j) => {
      b.initializer(uint8Tensor(`c${j}.q`, [qw.q.length], qw.q));
      b.initializer(floatTensor(`c${j}.scales`, [qw.scales.length], qw.scales));
      if (qw.zeroPoints) b.initializer(uint8Tensor(`c${j}.zero_points`, [qw.zeroPoints.length], qw.zeroPoints));
      return { name, error, bits: qw.bits, blockSize: qw.blockSize, N: qw.N, K: qw.K, nBlocks: qw.nBlocks, zeroPoints: !!qw.zeroPoints };
    });
    layer.tensors.forEach((t, j) => b.initializer({ ...t, name: `t${j}`, data: t.data }));
    const model = createModel(b.build(), {
      opsets: { '': 17 },
      metadata: { codes: JSON.stringify(meta), tensors: JSON.stringify(layer.tensors.map((t) => t.name)) },
    });
    writeModelFile(join(this.dir, `layer-${index}.onnx`), model, { externalData: 'never' });
    const bytes = Buffer.concat(hidden.map((h) => Buffer.from(h.buffer, h.byteOffset, h.byteLength)));
    writeFileSync(join(this.dir, 'hidden.tmp'), bytes);
    renameSync(join(this.dir, 'hidden.tmp'), join(this.dir, 'hidden.bin'));
    writeFileSync(join(this.dir, 'state.tmp'), JSON.stringify({ done: index + 1, batches: hidden.map((h) => h.length) }));
    renameSync(join(this.dir, 'state.tmp'), join(this.dir, STATE));
  }

  /** Creates the folder (and remembers which of its parents it created, for {@link remove}). */
  prepare(): void {
    const first = mkdirSync(this.dir, { recursive: true });
    if (first && this.created === undefined) this.created = first;
  }

  /** Records the calibration data, so that a resumed build does not sample or tokenize it again. */
  saveCalibration(data: CalibrationData): void {
    this.prepare();
    writeFileSync(join(this.dir, 'calibration.json'), JSON.stringify(data));
  }

  /** The recorded calibration data, or undefined when none was recorded. */
  loadCalibration(): CalibrationData | undefined {
    const path = join(this.dir, 'calibration.json');
    if (!existsSync(path)) return undefined;
    const bad = new AlkiError('BAD_INPUT', `the checkpoint's calibration data (${path}) is damaged`, 'build again without --resume');
    let data: CalibrationData;
    try {
      data = JSON.parse(readFileSync(path, 'utf8')) as CalibrationData;
    } catch {
      throw bad;
    }
    const ok =
      Array.isArray(data?.samples) &&
      data.samples.length > 0 &&
      data.samples.every((s) => Array.isArray(s) && s.length === data.samples[0].length && s.every((id) => Number.isSafeInteger(id) && id >= 0)) &&
      typeof data.source === 'string';
    if (!ok) throw bad;
    return data;
  }

  /** Deletes the checkpoint (after the build it served has finished), and the parents this object created if empty. */
  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
    if (!this.created) return;
    for (let d = dirname(this.dir); d.length >= this.created.length; d = dirname(d)) {
      try {
        rmdirSync(d);
      } catch {
        break; // not empty (or gone): leave it
      }
    }
    this.created = undefined;
  }

  private created: string | undefined;

  private readLayer(i: number, bad: (what: string) => AlkiError): CheckpointLayer {
    const model = readModelFile(join(this.dir, `layer-${i}.onnx`));
    const inits = new Map(model.graph.initializers.map((t) => [t.name, t]));
    const get = (name: string, type: DataType) => {
      const t = inits.get(name);
      if (!t || t.dataType !== type) throw bad(`layer ${i} lacks ${name}`);
      return t.data;
    };
    const meta = JSON.parse(model.metadata.codes ?? '[]') as {
      name: string;
      error: number;
      bits: number;
      blockSize: number;
      N: number;
      K: number;
      nBlocks: number;
      zeroPoints: boolean;
    }[];
    const codes = meta.map((m, j) => {
      const qw: BlockwiseQuantized = {
        bits: m.bits,
        blockSize: m.blockSize,
        N: m.N,
        K: m.K,
        nBlocks: m.nBlocks,
        q: get(`c${j}.q`, DataType.UINT8) as Uint8Array,
        scales: get(`c${j}.scales`, DataType.FLOAT) as Float32Array,
        zeroPoints: m.zeroPoints ? (get(`c${j}.zero_points`, DataType.UINT8) as Uint8Array) : undefined,
      };
      if (qw.q.length !== qw.N * qw.nBlocks * qw.blockSize || qw.scales.length !== qw.N * qw.nBlocks)
        throw bad(`layer ${i}'s codes of ${m.name} have the wrong size`);
      return { name: m.name, qw, error: m.error };
    });
    const names = JSON.parse(model.metadata.tensors ?? '[]') as string[];
    const tensors = names.map((name, j) => ({ ...inits.get(`t${j}`)!, name }));
    if (tensors.some((t) => !t.data)) throw bad(`layer ${i} lacks a tensor`);
    return { codes, tensors };
  }
}
