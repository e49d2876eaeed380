import { ort } from './ort.js';
import { DataType, GraphBuilder, createModel, encodeModel, floatTensor, int8Tensor, uint8Tensor } from '@alki/onnx';

/** How a W8A8 layer's weight codes are stored: their type and largest magnitude (uint8 codes sit around 128). */
export interface Int8Weights {
  type: 'int8' | 'uint8';
  maxCode: number;
}

const cache = new Map<string, Promise<Int8Probe>>();

/** What {@link probeInt8Products} measured. */
export interface Int8Probe {
  /** The product of the largest activation and weight codes came out exact. */
  exact: boolean;
  /** |y − exact| / exact on the probe. */
  relativeError: number;
}

/**
 * Asks onnxruntime itself, on this CPU, whether DynamicQuantizeMatMul adds
 * int8 products without loss for weights stored as `w`: a row of ones (→
 * uint8 255 after dynamic quantization) times a column of the largest codes,
 * whose exact result is K · maxCode. On x86 without VNNI the u8×s8 kernel adds
 * pairs of products in saturating 16 bits and returns far less; this is the
 * ground truth where /proc/cpuinfo is not (emulators, unusual builds).
 * Cached per process.
 */
export function probeInt8Products(w: Int8Weights): Promise<Int8Probe> {
  const key = `${w.type}:${w.maxCode}`;
  let p = cache.get(key);
  if (!p) {
    p = runProbe(w);
    cache.set(key, p);
  }
  return p;
}

async function runProbe(w: Int8Weights): Promise<Int8Probe> {
  const K = 64;
  const b = new GraphBuilder('int8_probe');
  const x = b.input('A', DataType.FLOAT, [1, K]);
  b.initializer(floatTensor('scale', [1], [1]));
  const inputs = [x, 'B', 'scale'];
  if (w.type === 'uint8') {
    b.initializer(uint8Tensor('B', [K, 1], new Uint8Array(K).fill(128 + w.maxCode)));
    inputs.push(b.initializer(uint8Tensor('zero', [1], new Uint8Array([128]))));
  } else {
    b.initializer(int8Tensor('B', [K, 1], new Int8Array(K).fill(w.maxCode)));
  }
  b.output(b.node('DynamicQuantizeMatMul', inputs, {}, { domain: 'com.microsoft', outputs: ['Y'] }), DataType.FLOAT, [1, 1]);
  const session = await ort.InferenceSession.create(encodeModel(createModel(b.build(), { opsets: { '': 17, 'com.microsoft': 1 } })), { intraOpNumThreads: 1 });
  try {
    const y = (await session.run({ A: new ort.Tensor('float32', new Float32Array(K).fill(1), [1, K]) })).Y.data as Float32Array;
    const exact = K * w.maxCode;
    const relativeError = Math.abs(y[0] - exact) / exact;
    return { exact: relativeError < 1e-3, relativeError };
  } finally {
    await session.release();
  }
}
