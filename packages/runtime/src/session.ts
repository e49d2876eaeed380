import { existsSync, statSync } from 'node:fs';
import { ort } from './ort.js';
import { AlkiError } from '@alki/core';

export interface SessionOptions {
  /** Intra-op threads (default: onnxruntime's choice, all cores). */
  threads?: number;
  /** Execution providers, default ['cpu']. */
  executionProviders?: string[];
}

/** A past key or value tensor of one layer. */
export type KvCache = ort.Tensor[];

/** Layout of a decoder's KV cache, read from the graph's inputs. */
export interface KvLayout {
  names: string[];
  numKvHeads: number;
  headDim: number;
  /** Output name that carries each input's updated cache. */
  presentNames: string[];
}

/** What one forward pass returns. */
export interface ForwardResult {
  /** [batch, seq, vocab], row-major. */
  logits: Float32Array;
  vocabSize: number;
  /** Updated cache, to pass as `past` of the next step. */
  present: KvCache;
}

/**
 * An onnxruntime-node session over a decoder graph with the transformers.js
 * I/O names (input_ids, attention_mask, position_ids, past_key_values.*).
 */
export class DecoderSession {
  private constructor(
    readonly session: ort.InferenceSession,
    readonly kv: KvLayout,
    private readonly hasPositionIds: boolean,
    /** The logits' last dimension when the graph fixes it: token ids must stay below it. */
    readonly vocabSize?: number,
  ) {}

  /** Loads an ONNX decoder (external data beside it is found by onnxruntime). */
  static async load(modelPath: string, options: SessionOptions = {}): Promise<DecoderSession> {
    if (!existsSync(modelPath)) throw new AlkiError('NOT_FOUND', `model file not found: ${modelPath}`, 'check the bundle path');
    const st = statSync(modelPath);
    if (!st.isFile()) throw new AlkiError('NOT_FOUND', `${modelPath} is not a file`, 'give the path of an .onnx file or of a bundle folder');
    if (st.size === 0) throw new AlkiError('CORRUPT_ONNX', `${modelPath} is empty (0 bytes)`, 'the bundle is damaged: copy or build it again');
    if (options.threads !== undefined && !(Number.isInteger(options.threads) && options.threads >= 1 && options.threads <= 1024)) {
      throw new AlkiError('BAD_OPTION', `threads must be a whole number from 1 to 1024, got ${options.threads}`, 'leave it out to use every core');
    }
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(modelPath, {
        executionProviders: options.executionProviders ?? ['cpu'],
        ...(options.threads ? { intraOpNumThreads: options.threads } : {}),
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
        // Keep constant DequantizeLinear→MatMul exact instead of letting ORT requantize activations.
        extra: { session: { qdq_matmulnbits_accuracy_level: '0' } },
      });
    } catch (e) {
      throw new AlkiError('RUNTIME', `onnxruntime could not load ${modelPath}: ${ortMessage(e)}`, 'the file may be damaged (run `alki info --verify`) or need a newer onnxruntime', { cause: e });
    }
    const logits = session.outputMetadata.find((m) => m.name === 'logits');
    const last = logits?.isTensor ? logits.shape[logits.shape.length - 1] : undefined;
    return new DecoderSession(session, kvLayout(session), session.inputNames.includes('position_ids'), typeof last === 'number' && last > 0 ? last : undefined);
  }

  /** An empty cache for `batch` sequences. */
  emptyCache(batch = 1): KvCache {
    return this.kv.names.map(() => new ort.Tensor('float32', new Float32Array(0), [batch, this.kv.numKvHeads, 0, this.kv.headDim]));
  }

  /**
   * Runs the decoder on `ids` (one row per sequence, all the same length) after
   * `past` (whose length is `pastLength`). Positions continue from `pastLength`.
   */
  async forward(ids: number[][], past: KvCache, pastLength: number): Promise<ForwardResult> {
    const batch = ids.length;
    const seq = ids[0]?.length ?? 0;
    if (batch === 0 || seq === 0) throw new AlkiError('BAD_INPUT', 'nothing to run: the token sequence is empty', 'give at least one token (a prompt, or a tokenizer that adds BOS)');
    const V = this.vocabSize;
    for (const row of ids) {
      if (row.length !== seq) throw new AlkiError('BAD_INPUT', 'the sequences of one batch must have the same length');
      for (const id of row) {
        if (!Number.isInteger(id) || id < 0 || (V !== undefined && id >= V)) {
          throw new AlkiError('BAD_INPUT', `token id ${id} is outside the model's vocabulary${V !== undefined ? ` (0 … ${V - 1})` : ''}`, 'the tokenizer does not belong to this model, or the ids were given by hand: check them');
        }
      }
    }
    const total = pastLength + seq;
    const flat = new BigInt64Array(batch * seq);
    const pos = new BigInt64Array(batch * seq);
    for (let b = 0; b < batch; b++) {
      for (let s = 0; s < seq; s++) {
        flat[b * seq + s] = BigInt(ids[b][s]);
        pos[b * seq + s] = BigInt(pastLength + s);
      }
    }
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', flat, [batch, seq]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(batch * total).fill(1n), [batch, total]),
    };
    if (this.hasPositionIds) feeds.position_ids = new ort.Tensor('int64', pos, [batch, seq]);
    this.kv.names.forEach((n, i) => (feeds[n] = past[i]));
    let out: ort.InferenceSession.OnnxValueMapType;
    try {
      out = await this.session.run(feeds);
    } catch (e) {
      const first = ortMessage(e);
      throw new AlkiError('RUNTIME', `onnxruntime failed while running the model on ${batch} × ${seq} tokens after ${pastLength}: ${first}`, 'check that the bundle verifies (`alki info --verify`) and that the inputs fit its context; if both hold, report this with --verbose', { cause: e });
    }
    const logits = out.logits as ort.Tensor;
    return {
      logits: logits.data as Float32Array,
      vocabSize: logits.dims[logits.dims.length - 1],
      present: this.kv.presentNames.map((n) => out[n] as ort.Tensor),
    };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

function kvLayout(session: ort.InferenceSession): KvLayout {
  const names = session.inputNames.filter((n) => n.startsWith('past_key_values.'));
  let numKvHeads = 0;
  let headDim = 0;
  for (const m of session.inputMetadata) {
    if (m.isTensor && m.name === names[0]) {
      const [, kvh, , hd] = m.shape;
      if (typeof kvh === 'number') numKvHeads = kvh;
      if (typeof hd === 'number') headDim = hd;
    }
  }
  if (!session.inputNames.includes('input_ids') || !session.outputNames.includes('logits')) {
    throw new AlkiError('BAD_BUNDLE', 'the ONNX model is not a decoder with input_ids → logits', 'Alki runs causal language-model graphs with the transformers.js input/output names');
  }
  if (names.length > 0 && (!numKvHeads || !headDim)) {
    throw new AlkiError('BAD_BUNDLE', 'the KV-cache inputs of the model have no fixed head count/size', 'export the model with Alki');
  }
  const presentNames = names.map((n) => n.replace('past_key_values.', 'present.'));
  for (const p of presentNames) {
    if (!session.outputNames.includes(p)) throw new AlkiError('BAD_BUNDLE', `the model has no output ${p} for its cache input`, 'export the model with Alki');
  }
  return { names, numKvHeads, headDim, presentNames };
}

/**
 * onnxruntime's error text without the C++ source paths and function signatures it carries
 * ("/onnxruntime_src/…cc:264 onnxruntime::common::Status onnxruntime::…(…) …"): the sentence a person can read.
 */
export function ortMessage(e: unknown): string {
  let m = String((e as Error)?.message ?? e).split('\n')[0];
  m = m.replace(/\/onnxruntime_src\/\S+:\d+\s*/g, '');
  // Drop "onnxruntime::ns::Type onnxruntime::ns::fn(args…)" signatures, up to the matching closing parenthesis.
  for (let i = m.indexOf('onnxruntime::'); i >= 0; i = m.indexOf('onnxruntime::')) {
    const open = m.indexOf('(', i);
    if (open < 0) break;
    let depth = 0;
    let end = open;
    for (; end < m.length; end++) {
      if (m[end] === '(') depth++;
      else if (m[end] === ')' && --depth === 0) break;
    }
    // From the first "onnxruntime::" (a return type such as onnxruntime::common::Status, or the function itself).
    m = `${m.slice(0, i)} ${m.slice(end + 1)}`;
  }
  m = m.replace(/\s+/g, ' ').trim();
  return m.length > 300 ? `${m.slice(0, 297)}…` : m;
}
