import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ARCHITECTURES, SUPPORTED_MODEL_TYPES } from '../src/architectures.js';
import { parseDecoderConfig } from '../src/config.js';
import { layerNames } from '../src/export/names.js';
import { tinyLlama } from '../../../tools/fixtures/index.js';

describe('architecture records', () => {
  for (const type of SUPPORTED_MODEL_TYPES) {
    it(`${type}: the record is consistent, and a generated checkpoint parses back to its facts`, () => {
      const arch = ARCHITECTURES[type];
      // The MLP's tensor names are those of its kind.
      expect(Object.keys(arch.names.mlp).sort()).toEqual(arch.mlp === 'gated' ? ['down', 'gate', 'up'] : ['fc1', 'fc2']);
      const m = tinyLlama({ modelType: type, numHeads: 2, numKvHeads: 2 });
      const c = parseDecoderConfig(JSON.parse(readFileSync(join(m.dir, 'config.json'), 'utf8')));
      m.cleanup();
      expect(c.modelType).toBe(type);
      expect(c.norm).toBe(arch.norm.kind);
      expect(c.mlp).toBe(arch.mlp);
      expect(c.normPlusOne).toBe(arch.norm.plusOne);
      expect(c.scaleEmbeddings).toBe(arch.scaleEmbeddings);
      expect(c.headBias).toBe(arch.bias.head);
      expect(c.tieWordEmbeddings).toBe(false);
      expect(c.rotaryDim).toBe(arch.partialRotary ? Math.floor(arch.partialRotary.default * c.headDim) : c.headDim);
      expect(layerNames(c, 0).o).toBe(`${arch.names.layers}.0.${arch.names.o}`);
    });
  }
});
