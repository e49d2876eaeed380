import type { ProgressCallback } from '@alki/core';
import type { Model, ScaleGroup, Tensor, TensorSpill } from '@alki/onnx';
import type { BlockwiseQuantized } from '../blockwise.js';
import type { LayerCheckpoint } from '../checkpoint.js';
import type { Scratch } from '../scratch.js';
import type { OrtGemm } from '../ort/gemm.js';
import type { LayerRunner } from './layer-runner.js';

/** Token sequences to calibrate on, all of one length, and where they came from. */
export interface CalibrationData {
  samples: number[][];
  /** e.g. "calib.txt (sha256 …)" or "sampled from the fp32 model (seed 0)". */
  source: string;
  sha256?: string;
}

export interface CalibratedOptions {
  method: 'gptq' | 'awq' | 'smoothquant';
  /** SmoothQuant migration strength α (default 0.5). */
  alpha?: number;
  bits: 2 | 4 | 8;
  /** Bits per weight where they differ from `bits` (the output projection's own width). */
  bitsOf?: (name: string) => 2 | 4 | 8;
  blockSize: number;
  symmetric: boolean;
  actOrder?: boolean;
  /**
   * GPTQ: also quantize an 8-bit head with GPTQ (default false: rounded to nearest, as AWQ does; AutoGPTQ leaves
   * the head in float). At 8 bits GPTQ's error feedback changes nothing measurable, and the head's span (a
   * 32000-wide product and Hessian) cost a TinyLlama-shaped --quick build 11.6 s against 3.2 s rounded.
   */
  gptqHead?: boolean;
  /** GPTQ: each input's statistics collected after the layer's earlier linears are quantized (see QuantizeOptions.trueSequential). */
  trueSequential?: boolean;
  /** GPTQ: fit the float model's outputs (asymmetric calibration, see QuantizeOptions.floatTargets). */
  floatTargets?: boolean;
  /** GPTQ: MSE-searched block ranges (see GptqOptions.mseClip). */
  mseClip?: boolean;
  /** GPTQ: search and fold AWQ's per-channel scales first, then round with GPTQ (see QuantizeOptions.awqScales). */
  awqScales?: boolean;
  percDamp?: number;
  /** Calibration rows kept per linear input for AWQ's searches (default 4096). */
  awqRows?: number;
  /**
   * AWQ: groups larger than this (outputs × inputs) skip the searches and are plain RTN (default 32 Mi): in practice
   * the vocabulary head of real models (32000 × 2048), which AutoAWQ does not quantize at all; its searches would
   * cost more than all decoder layers together on a CPU.
   */
  awqMaxGroup?: number;
  /** AWQ: outputs on which the scale search measures its candidates (default 1024; see AwqOptions.searchOutputs). */
  awqSearchOutputs?: number;
  /**
   * AWQ: multiply-adds one scale candidate may cost (rows × outputs × K, default 2e9): a wide group is measured on
   * fewer calibration rows (at least 256) so that every group's search costs about the same.
   */
  awqSearchBudget?: number;
  /**
   * AWQ: weights whose outputs are never clipped when the export did not say which outputs are attention queries
   * and keys (ScaleGroup.unclipped; foreign graphs): by name, default /q_proj|k_proj/. Attention scores are too
   * sensitive to clipping (as in AutoAWQ).
   */
  awqUnclippedNames?: RegExp;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
  /**
   * Weights to leave bit-identical (still MatMul): never rounded, dequantized or clipped, and a group holding one
   * (or folding into one) gets no AWQ / SmoothQuant scale, which would rescale its rows.
   */
  excluded?: ReadonlySet<string>;
  /**
   * Filled with each GPTQ weight's ‖W − Ŵ‖ / ‖W‖ against the weight it started from (with `floatTargets`, the
   * least-squares weight GPTQ rounded).
   */
  errors?: Map<string, number>;
  /**
   * Streaming: AWQ's and GPTQ's codes are handed here as soon as nothing reads the layer's float weights any more
   * (and are not kept for the returned map), so that a model's codes never sit in memory all at once.
   */
  onCodes?: (name: string, qw: BlockwiseQuantized) => void;
  /**
   * Streaming: where weights that SmoothQuant rewrote are kept once their layer is done. Without it they stay in
   * memory. Lazy weights (a streamed export) are loaded per layer either way and dropped after it.
   */
  spill?: TensorSpill;
  /**
   * AWQ (and GPTQ with `awqScales`): filled with the per-input scale s folded into each linear (W' = diag(s)·W), by
   * weight name: a tied token table then reads the head's codes and divides by s (see shareTiedEmbedding).
   */
  appliedScales?: Map<string, Float32Array>;
  /** AWQ, GPTQ: records each finished layer, and resumes after the last one it holds (see {@link FolderCheckpoint}). */
  checkpoint?: LayerCheckpoint;
}

/** What a layer step works with: the model, the runner over calibration data, kernels and work memory. */
export interface LayerContext {
  model: Model;
  runner: LayerRunner;
  gemm: OrtGemm;
  /** Work memory shared by the layers' GPTQ and AWQ searches, and for weight copies. */
  scratch: Scratch;
  weightScratch: Scratch;
  weight: (name: string) => Tensor;
  o: CalibratedOptions;
  results: Map<string, BlockwiseQuantized>;
  opts: { bits: 2 | 4 | 8; blockSize: number; symmetric: boolean };
  /** A weight's width: its own (the head's) or `opts.bits`. */
  bitsOf: (name: string) => 2 | 4 | 8;
  /** The block of a weight with rows of K inputs at `bits` (see writtenBlockSize). */
  blockOf: (K: number, bits: number) => number;
}

/** One span of the model to calibrate: its index, its scale groups and where each group reads its input. */
export interface LayerWork {
  index: number;
  /** The last span (the head): nothing is calibrated after it. */
  last: boolean;
  groups: ScaleGroup[];
  inputOf: (g: ScaleGroup) => string;
}
