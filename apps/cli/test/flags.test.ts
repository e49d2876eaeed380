import { describe, expect, it } from 'vitest';
import { parsePercent } from '../src/commands/eval-flags.js';
import { parseExclude, quickFlag } from '../src/commands/build.js';

describe('flag parsing', () => {
  it('--max-ppl-increase: a number is a percentage with or without the sign, one rule for every value', () => {
    expect(parsePercent('1', 'f')).toBeCloseTo(0.01);
    expect(parsePercent('1%', 'f')).toBeCloseTo(0.01);
    expect(parsePercent('1.5', 'f')).toBeCloseTo(0.015);
    expect(parsePercent(' 10 % ', 'f')).toBeCloseTo(0.1);
    expect(parsePercent('0.5', 'f')).toBeCloseTo(0.005);
    expect(parsePercent(250, 'f')).toBeCloseTo(2.5);
    for (const bad of ['', '%', 'abc', '-1', 'NaN', 'Infinity', '5%%'])
      expect(() => parsePercent(bad, '--max-ppl-increase')).toThrow(/--max-ppl-increase must be a percentage/);
  });

  it('--exclude: /re/ and /re/i are regular expressions, anything else an exact name; a broken one is refused', () => {
    const [name, re, ci] = parseExclude(['lm_head.weight', '/mlp\\.down_proj/', '/LM_HEAD/i'])!;
    expect(name).toBe('lm_head.weight');
    expect(re).toBeInstanceOf(RegExp);
    expect((re as RegExp).test('model.layers.3.mlp.down_proj.weight')).toBe(true);
    expect((ci as RegExp).test('lm_head.weight')).toBe(true);
    expect(parseExclude(undefined)).toBeUndefined();
    expect(() => parseExclude(['/(unclosed/'])).toThrow(/--exclude \/\(unclosed\/ is not a valid regular expression/);
  });

  it('--quick / --no-quick: as given; the demo quick unless a size is given; else unset (the model’s size decides)', () => {
    expect(quickFlag(true, false, true)).toBe(true);
    expect(quickFlag(false, true, false)).toBe(false);
    expect(quickFlag(undefined, true, false)).toBe(true);
    expect(quickFlag(undefined, true, true)).toBeUndefined();
    expect(quickFlag(undefined, false, false)).toBeUndefined();
  });
});
