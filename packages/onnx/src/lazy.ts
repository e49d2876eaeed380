import { closeSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { AlkiError, fsError } from '@alki/core';
import { elementSize, numel, typedArrayFromBytes } from './tensor.js';
import { transpose } from './transpose.js';
import type { DataType, Model, Tensor, TensorData } from './types.js';

/**
 * Lazy tensors let a model larger than memory stream through export, quantization and writing: the graph holds
 * names, types and shapes, and each large initializer's values are produced only when read, from the checkpoint
 * or a spill file, then dropped by the reader. Nothing is cached, so every read of `data` loads again: read it once
 * into a local, and never modify it in place (call {@link materialize} first when a step must).
 */
const LAZY = Symbol('alki.lazy');
const TRANSPOSED = Symbol('alki.lazy.transposed');
/** The loaders of a tensor materialized from a lazy one, so that {@link release} can drop its values again. */
const ORIGIN = Symbol('alki.lazy.origin');

type Loaders = { load: () => TensorData; transposed?: () => Float32Array };
type LazyTensor = Tensor & { [LAZY]: () => TensorData; [TRANSPOSED]?: () => Float32Array; [ORIGIN]?: Loaders };

/**
 * A tensor whose `data` is produced by `load` on every read (see the module note). `transposed`, for a 2-D float
 * tensor stored transposed at its source (a checkpoint's [out, in] linear weight exported as MatMul's [in, out]),
 * loads the source layout directly: see {@link readTransposed}.
 */
export function lazyTensor(name: string, dataType: DataType, dims: number[], load: () => TensorData, transposed?: () => Float32Array): Tensor {
  return makeLazy({ name, dataType, dims } as Tensor, { load, transposed });
}

/** Turns `t` (the same object) into a lazy tensor reading through `loaders`. */
function makeLazy(t: Tensor, loaders: Loaders): Tensor {
  const lt = t as LazyTensor;
  const { name, dims } = t;
  lt[LAZY] = loaders.load;
  if (loaders.transposed) lt[TRANSPOSED] = loaders.transposed;
  else delete lt[TRANSPOSED];
  Object.defineProperty(t, 'data', {
    enumerable: true,
    configurable: true,
    get: () => {
      const d = loaders.load();
      if (d.length !== numel(dims)) throw new AlkiError('BAD_INPUT', `lazy tensor "${name}" produced ${d.length} values for dims [${dims.join(', ')}]`);
      return d;
    },
    // Assigning concrete data (e.g. resolveExternalData, a quantizer's rewrite) makes the tensor an ordinary one.
    set: (v: TensorData) => {
      Object.defineProperty(t, 'data', { value: v, writable: true, enumerable: true, configurable: true });
      lt[ORIGIN] = loaders;
      delete (lt as Partial<LazyTensor>)[LAZY];
      delete lt[TRANSPOSED];
    },
  });
  return t;
}

/** Whether `t` loads its values on every read. */
export function isLazy(t: Tensor): boolean {
  return LAZY in t;
}

/** Loads a lazy tensor's values once and keeps them (in place: the same object becomes an ordinary tensor). */
export function materialize(t: Tensor): Tensor {
  // The getter loads the values, the assignment replaces the getter with them.
  // eslint-disable-next-line no-self-assign
  if (isLazy(t)) t.data = t.data;
  return t;
}

/**
 * Drops the values of a tensor that {@link materialize} loaded: it reads from its source again (what it holds
 * now is lost: call it when those values are no longer needed), or, with `spill`, from a copy of what it holds
 * now. Ordinary tensors that never were lazy are kept unless a spill is given.
 */
export function release(t: Tensor, spill?: TensorSpill): Tensor {
  if (isLazy(t)) return t;
  if (spill) return makeLazy(t, { load: spill.write(t) });
  const origin = (t as LazyTensor)[ORIGIN];
  return origin ? makeLazy(t, origin) : t;
}

/** Materializes every initializer of a model: for steps that modify weights in place. */
export function materializeModel(model: Model): Model {
  for (const t of model.graph.initializers) materialize(t);
  return model;
}

/**
 * A 2-D float32 tensor [R, C] transposed to [C, R]: straight from the source when the tensor is lazy and was
 * stored that way there (no transpose, one read), else by transposing its values.
 */
export function readTransposed(t: Tensor): Float32Array {
  const direct = (t as Partial<LazyTensor>)[TRANSPOSED];
  if (direct) return direct();
  const d = t.data;
  if (t.dims.length !== 2 || !(d instanceof Float32Array)) throw new AlkiError('BAD_INPUT', `readTransposed: "${t.name}" is not a 2-D float32 tensor`);
  return transpose(d, t.dims[0], t.dims[1]);
}

/** Bytes of a tensor's values, from its type and dims (without loading a lazy tensor). */
export function tensorByteLength(t: Tensor): number {
  return isLazy(t) ? elementSize(t.dataType) * numel(t.dims) : t.data.byteLength;
}

/**
 * An append-only scratch file that holds tensors out of memory: {@link TensorSpill.spill} writes a tensor's bytes
 * and returns a lazy tensor that reads them back. The file is the caller's to place (inside its temp folder) and
 * is deleted by {@link TensorSpill.remove}.
 */
export class TensorSpill {
  private fd: number | undefined;
  private offset = 0;

  constructor(readonly path: string) {
    try {
      this.fd = openSync(path, 'wx+');
    } catch (e) {
      throw fsError(e, `creating ${path}`);
    }
  }

  /** Bytes written so far. */
  get bytes(): number {
    return this.offset;
  }

  /** Writes `t`'s values to the file; the returned tensor reads them back on demand. */
  spill(t: Tensor): Tensor {
    return lazyTensor(t.name, t.dataType, t.dims, this.write(t));
  }

  /** Writes `t`'s values to the file and returns what reads them back. */
  write(t: Tensor): () => TensorData {
    const fd = this.open();
    const d = t.data;
    const bytes = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
    const at = this.offset;
    try {
      let done = 0;
      while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, at + done);
    } catch (e) {
      throw fsError(e, `writing ${this.path}`);
    }
    this.offset += bytes.length;
    // The loader must not capture `t` (or `d`): that would keep the values in memory.
    const { name, dataType } = t;
    const length = bytes.length;
    return () => {
      const buf = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const n = readSync(this.open(), buf, done, length - done, at + done);
        if (n === 0) throw new AlkiError('IO', `${this.path} ended while reading back "${name}"`);
        done += n;
      }
      return typedArrayFromBytes(dataType, buf);
    };
  }

  /** Closes and deletes the file; tensors it returned can no longer be read. */
  remove(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    rmSync(this.path, { force: true });
  }

  private open(): number {
    if (this.fd === undefined) throw new AlkiError('IO', `${this.path} was removed while its tensors were still in use`);
    return this.fd;
  }
}
