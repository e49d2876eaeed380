import { describe, expect, it } from 'vitest';
import { AlkiError } from '@alki/core';
import {
  ALKI_METADATA_KEYS,
  DataType,
  GraphBuilder,
  createModel,
  exportMetadataEntries,
  floatTensor,
  readDecoderLayout,
  readTiedEmbedding,
  type Model,
} from '../src/index.js';

/** x → MatMul(w0) → y → MatMul(w1) → z, with the export's metadata for one layer and one head group. */
function model(metadata?: Record<string, string>): Model {
  const g = new GraphBuilder('m');
  const x = g.input('x', DataType.FLOAT, [1, 2]);
  const w0 = g.initializer(floatTensor('w0', [2, 2], [1, 0, 0, 1]));
  const w1 = g.initializer(floatTensor('w1', [2, 2], [1, 0, 0, 1]));
  const y = g.node('MatMul', [x, w0], {}, { outputs: ['y'] });
  g.output(g.node('MatMul', [y, w1], {}, { outputs: ['z'] }), DataType.FLOAT, [1, 2]);
  const m = createModel(g.build(), { opsets: { '': 17 } });
  m.metadata =
    metadata ??
    exportMetadataEntries({
      scaleGroups: [
        { layer: 0, linears: ['w0'] },
        { layer: -1, prev: 'w0', linears: ['w1'] },
      ],
      layers: [{ input: 'y', output: 'z' }],
      flavour: 'portable',
      modelType: 'llama',
      tiedEmbedding: { embedding: 'w0', head: 'w1' },
    });
  return m;
}

describe('the export metadata contract', () => {
  it('reads back what the export wrote', () => {
    const m = model();
    expect(readDecoderLayout(m)).toEqual({
      layers: [{ input: 'y', output: 'z' }],
      scaleGroups: [
        { layer: 0, linears: ['w0'] },
        { layer: -1, prev: 'w0', linears: ['w1'] },
      ],
    });
    expect(readTiedEmbedding(m)).toEqual({ embedding: 'w0', head: 'w1' });
    expect(m.metadata[ALKI_METADATA_KEYS.flavour]).toBe('portable');
  });

  it('treats a graph without the metadata as foreign', () => {
    expect(readDecoderLayout(model({}))).toBeUndefined();
    expect(readTiedEmbedding(model({}))).toBeUndefined();
  });

  it.each([
    ['invalid JSON', { [ALKI_METADATA_KEYS.layers]: '[{', [ALKI_METADATA_KEYS.scaleGroups]: '[]' }],
    ['one key without the other', { [ALKI_METADATA_KEYS.layers]: '[{"input":"y","output":"z"}]' }],
    ['a layer naming a value the graph lacks', { [ALKI_METADATA_KEYS.layers]: '[{"input":"y","output":"nope"}]', [ALKI_METADATA_KEYS.scaleGroups]: '[]' }],
    [
      'a group naming a missing weight',
      { [ALKI_METADATA_KEYS.layers]: '[{"input":"y","output":"z"}]', [ALKI_METADATA_KEYS.scaleGroups]: '[{"layer":0,"linears":["../../etc/passwd"]}]' },
    ],
    [
      'a group of a layer that does not exist',
      { [ALKI_METADATA_KEYS.layers]: '[{"input":"y","output":"z"}]', [ALKI_METADATA_KEYS.scaleGroups]: '[{"layer":7,"linears":["w0"]}]' },
    ],
    [
      'a negative unclipped count',
      { [ALKI_METADATA_KEYS.layers]: '[{"input":"y","output":"z"}]', [ALKI_METADATA_KEYS.scaleGroups]: '[{"layer":0,"linears":["w0"],"unclipped":{"w0":-1}}]' },
    ],
  ])('refuses malformed metadata: %s', (_, metadata) => {
    const err = (() => {
      try {
        readDecoderLayout(model(metadata));
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(AlkiError);
    expect((err as AlkiError).code).toBe('CORRUPT_ONNX');
    expect((err as AlkiError).hint).toMatch(/export the model again/);
  });
});
