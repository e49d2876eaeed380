import type { ort } from '@alki/runtime';

/**
 * Session options of the calibration's onnxruntime sessions: intra-op threads that sleep instead of spinning when a
 * run ends. Calibration alternates many short runs with JS work (GPTQ's column loop and range search, AWQ's
 * bookkeeping) and runs from several sessions; spinning pool threads took the cores from the JS thread and from each
 * other. On the TinyLlama shape at 8 × 256 tokens (Intel Xeon Sapphire Rapids, 2 cores, avx2 avx512f avx512_vnni
 * amx), GPTQ went from 11.0 to 10.2 s per layer, its 4,700 small update GEMMs per layer from 0.28 to 0.18 ms each.
 */
export const CALIBRATION_SESSION_OPTIONS: ort.InferenceSession.SessionOptions = { extra: { session: { 'intra_op.allow_spinning': '0' } } };
