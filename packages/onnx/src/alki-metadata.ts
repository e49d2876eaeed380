import { AlkiError } from '@alki/core';
import type { Model } from './types.js';

/**
 * The contract between the export (@alki/models, which writes it) and the quantizers and bundle (which read it):
 * what Alki records in a graph's metadata_props. Everything here is read back from files, so the reader
 * validates it instead of trusting it.
 */
export const ALKI_METADATA_KEYS = {
  /** JSON {@link ScaleGroup}[]: the linears that read one input and what produces it. */
  scaleGroups: 'alki.scale_groups',
  /** JSON {@link LayerSpan}[]: the values entering and leaving each decoder layer. */
  layers: 'alki.layers',
  /** 'ort' or 'portable': the graph flavour of the export. */
  flavour: 'alki.flavour',
  /** The config's model_type. */
  modelType: 'alki.model_type',
  /** JSON {@link TiedEmbedding}: present when the output projection is the embedding table transposed. */
  tiedEmbedding: 'alki.tied_embedding',
  /** JSON: the quantizer's summary (method, bits, block size, …), written by @alki/quantizers. */
  quantization: 'alki.quantization',
} as const;

/**
 * A group of linear layers that read the same input, with what produces that input: a norm whose weight can absorb
 * per-channel scales (AWQ, SmoothQuant), or a preceding linear layer whose output columns can. Names are ONNX
 * initializer names.
 */
export interface ScaleGroup {
  /** Decoder layer index, or -1 for the head. */
  layer: number;
  /** Weight of the norm that feeds the linears (RMSNorm/LayerNorm gamma). */
  norm?: string;
  /** Bias of that norm, when it has one (LayerNorm beta). */
  normBias?: string;
  /** Weight [in, out] of the linear layer that feeds the linears instead of a norm. */
  prev?: string;
  /** MatMul weights [in, out] that read the same input. */
  linears: string[];
  /** No producer can absorb a scale (foreign graphs): a Mul is inserted before the linears instead. */
  insertMul?: boolean;
  /** Per weight, how many leading outputs are attention queries/keys, which AWQ does not clip. */
  unclipped?: Record<string, number>;
}

/** The values that enter and leave one decoder layer: calibration runs a layer as a graph of its own. */
export interface LayerSpan {
  input: string;
  output: string;
}

/** The embedding table and the output projection that is its transpose (tie_word_embeddings). */
export interface TiedEmbedding {
  embedding: string;
  head: string;
}

/** What the export records about a decoder graph. */
export interface ExportMetadata {
  scaleGroups: ScaleGroup[];
  layers: LayerSpan[];
  flavour: 'ort' | 'portable';
  modelType: string;
  tiedEmbedding?: TiedEmbedding;
}

/** The metadata entries for {@link ExportMetadata}, as the export writes them. */
export function exportMetadataEntries(m: ExportMetadata): Record<string, string> {
  const k = ALKI_METADATA_KEYS;
  return {
    [k.scaleGroups]: JSON.stringify(m.scaleGroups),
    [k.layers]: JSON.stringify(m.layers),
    [k.flavour]: m.flavour,
    [k.modelType]: m.modelType,
    ...(m.tiedEmbedding ? { [k.tiedEmbedding]: JSON.stringify(m.tiedEmbedding) } : {}),
  };
}

/**
 * The export's layout of a graph: its layer spans and scale groups, validated against the graph (every name must
 * be one of its initializers or values), or undefined for a graph Alki did not export (no such metadata).
 * Throws CORRUPT_ONNX when the metadata is there but malformed.
 */
export function readDecoderLayout(model: Model): { layers: LayerSpan[]; scaleGroups: ScaleGroup[] } | undefined {
  const k = ALKI_METADATA_KEYS;
  const groupsJson = model.metadata[k.scaleGroups];
  const layersJson = model.metadata[k.layers];
  if (groupsJson === undefined && layersJson === undefined) return undefined;
  const layers = parse(layersJson, k.layers);
  const scaleGroups = parse(groupsJson, k.scaleGroups);
  const inits = new Set(model.graph.initializers.map((t) => t.name));
  const values = new Set(model.graph.nodes.flatMap((n) => n.outputs));
  const isInit = (v: unknown): v is string => typeof v === 'string' && inits.has(v);
  const isValue = (v: unknown): v is string => typeof v === 'string' && values.has(v);
  if (!Array.isArray(layers) || layers.length === 0 || !layers.every((l) => isObject(l) && isValue(l.input) && isValue(l.output))) {
    throw malformed(k.layers, 'a non-empty list of { input, output } value names of the graph');
  }
  const isGroup = (g: unknown): g is ScaleGroup =>
    isObject(g) &&
    Number.isInteger(g.layer) &&
    (g.layer as number) >= -1 &&
    (g.layer as number) < layers.length &&
    Array.isArray(g.linears) &&
    g.linears.length > 0 &&
    g.linears.every(isInit) &&
    (g.norm === undefined || isInit(g.norm)) &&
    (g.normBias === undefined || isInit(g.normBias)) &&
    (g.prev === undefined || isInit(g.prev)) &&
    (g.insertMul === undefined || typeof g.insertMul === 'boolean') &&
    (g.unclipped === undefined || (isObject(g.unclipped) && Object.values(g.unclipped).every((n) => Number.isInteger(n) && (n as number) >= 0)));
  if (!Array.isArray(scaleGroups) || !scaleGroups.every(isGroup)) {
    throw malformed(k.scaleGroups, 'a list of { layer, linears, norm?, prev? } naming initializers of the graph');
  }
  return { layers: layers as LayerSpan[], scaleGroups };
}

/** The graph flavour the export recorded ('ort' or 'portable'), or undefined for a graph that records none or another value. */
export function readExportFlavour(model: Model): 'ort' | 'portable' | undefined {
  const f = model.metadata[ALKI_METADATA_KEYS.flavour];
  return f === 'ort' || f === 'portable' ? f : undefined;
}

/** The tied embedding and head the export recorded (names only: a quantizer may have replaced the head since). */
export function readTiedEmbedding(model: Model): TiedEmbedding | undefined {
  const json = model.metadata[ALKI_METADATA_KEYS.tiedEmbedding];
  if (json === undefined) return undefined;
  let tied: unknown;
  try {
    tied = JSON.parse(json);
  } catch {
    return undefined;
  }
  return isObject(tied) && typeof tied.embedding === 'string' && typeof tied.head === 'string' ? { embedding: tied.embedding, head: tied.head } : undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parse(json: string | undefined, key: string): unknown {
  if (json === undefined) throw malformed(key, 'present whenever the other layout key is');
  try {
    return JSON.parse(json);
  } catch {
    throw malformed(key, 'valid JSON');
  }
}

function malformed(key: string, expected: string): AlkiError {
  return new AlkiError(
    'CORRUPT_ONNX',
    `the graph's ${key} metadata is malformed: it must be ${expected}`,
    'export the model again with Alki, or remove the alki.* metadata_props to calibrate it as a foreign graph',
  );
}
