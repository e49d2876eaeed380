import { existsSync, statSync } from 'node:fs';
import { readModelFile, type Graph } from '@alki/onnx';
import { ort } from './ort.js';
import { AlkiError } from '@alki/core';
import { Decoder, ortMessage } from './decoder.js';

/** Graph files read to find out whether the cache can be updated in place: above this, the weights are inside. */
const MAX_GRAPH_PROBE_BYTES = 64 * 2 ** 20;

export interface SessionOptions {
  /** Intra-op threads (default: onnxruntime's choice, all cores). */
  threads?: number;
  /** Execution providers, default ['cpu']. */
  executionProviders?: string[];
  /**
   * onnxruntime's CPU memory arena (default true). The arena keeps what it once allocated: a long generation whose
   * key/value tensors grow every step (a copying cache, where the graph cannot append in place) leaves each step's slightly larger
   * buffers behind in it (see calibrationFromModel).
   */
  memoryArena?: boolean;
}

/** A {@link Decoder} over an onnxruntime-node session, loaded from a file. */
export class DecoderSession extends Decoder {
  /**
   * Loads an ONNX decoder (external data beside it is found by onnxruntime). On the CPU provider, a graph file of at
   * most 64 MiB (weights in external data, as in Alki's bundles) is read once more to find out whether its KV cache
   * can be updated in place ({@link cacheUpdatedInPlace}); larger files keep the copying cache.
   */
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
        ...(options.memoryArena === false ? { enableCpuMemArena: false } : {}),
        // Keep constant DequantizeLinear→MatMul exact instead of letting ORT requantize activations.
        extra: { session: { qdq_matmulnbits_accuracy_level: '0' } },
      });
    } catch (e) {
      throw new AlkiError(
        'RUNTIME',
        `onnxruntime could not load ${modelPath}: ${ortMessage(e)}`,
        'the file may be damaged (run `alki info --verify`) or need a newer onnxruntime',
        { cause: e },
      );
    }
    // The shared buffer is onnxruntime's CPU path; a graph file past 64 MiB holds its weights, and is not read twice.
    const cpu = (options.executionProviders ?? ['cpu']).every((p) => p === 'cpu');
    return new DecoderSession(session, ort.Tensor, { kvInPlace: cpu && st.size <= MAX_GRAPH_PROBE_BYTES && cacheUpdatedInPlace(modelPath) });
  }
}

/**
 * Whether every past_key_values input of the graph at `modelPath` feeds only GroupQueryAttention's past key/value
 * (inputs 3 and 4), whose present outputs are the matching present.* outputs: then a max-length buffer bound as both
 * is appended to in place (DecoderOptions.kvInPlace). Any other reader of the cache (a Concat, a Shape) rules it out.
 */
export function cacheUpdatedInPlace(modelPath: string): boolean {
  let graph: Graph;
  try {
    graph = readModelFile(modelPath, { loadExternalData: false }).graph;
  } catch {
    return false; // onnxruntime has read it already: whatever this reader dislikes, the copying cache still works
  }
  const past = graph.inputs.filter((i) => i.name.startsWith('past_key_values.')).map((i) => i.name);
  if (past.length === 0) return false;
  return past.every((name) => {
    const readers = graph.nodes.filter((n) => n.inputs.includes(name));
    return (
      readers.length > 0 &&
      readers.every((n) => {
        if (n.opType !== 'GroupQueryAttention' || n.domain !== 'com.microsoft') return false;
        const slot = n.inputs.indexOf(name);
        const present = name.replace('past_key_values.', 'present.');
        return (slot === 3 || slot === 4) && n.inputs.lastIndexOf(name) === slot && n.outputs[slot - 2] === present;
      })
    );
  });
}
