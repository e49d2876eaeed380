import { afterEach, describe, expect, it, vi } from 'vitest';
import { progressPrinter } from '../src/output.js';

const tty = Object.getOwnPropertyDescriptor(process.stderr, 'isTTY');
afterEach(() => {
  vi.restoreAllMocks();
  if (tty) Object.defineProperty(process.stderr, 'isTTY', tty);
  else delete (process.stderr as { isTTY?: boolean }).isTTY;
});

describe('progressPrinter', () => {
  it('prints a message as a line of its own, whole, and keeps counting the step', () => {
    const lines: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (lines.push(String(s)), true));
    Object.defineProperty(process.stderr, 'isTTY', { value: false, configurable: true });
    const print = progressPrinter({ quiet: false, json: false })!;
    const message = `calibration: the quick recipe ${'x'.repeat(200)}`;
    print({ step: 'calibration data', done: 0, total: 0, message });
    print({ step: 'calibration data', done: 0, total: 10, unit: 'tokens' });
    print({ step: 'calibration data', done: 10, total: 10, unit: 'tokens' });
    expect(lines).toEqual([`${message}\n`, 'calibration data: 0/10\n', 'calibration data: 10/10\n']);
  });

  it('on a terminal, leaves the bar being drawn and prints the message under it', () => {
    const out: string[] = [];
    vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => (out.push(String(s)), true));
    Object.defineProperty(process.stderr, 'isTTY', { value: true, configurable: true });
    const print = progressPrinter({ quiet: false, json: false })!;
    print({ step: 'export', done: 1, total: 4 });
    print({ step: 'note', done: 0, total: 0, message: 'hello' });
    print({ step: 'export', done: 2, total: 4 });
    expect(out[1]).toBe('\nhello\n');
    expect(out[0]).toMatch(/^\r\x1b\[2Kexport .* 1\/4/);
    expect(out[2]).toMatch(/^\r\x1b\[2Kexport .* 2\/4/);
  });

  it('prints nothing with --quiet or --json', () => {
    expect(progressPrinter({ quiet: true, json: false })).toBeUndefined();
    expect(progressPrinter({ quiet: false, json: true })).toBeUndefined();
  });
});
