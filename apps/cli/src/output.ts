import type { ProgressEvent } from '@alki/core';

/** Global output switches every command shares. */
export interface OutputFlags {
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
}

/** Human-readable bytes (decimal units, as disk sizes are sold). */
export function formatBytes(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)} kB`;
  return `${n} B`;
}

function formatDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  if (s < 60) return `${Math.round(s)}s`;
  return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
}

/**
 * Draws library progress events on stderr: a redrawn bar with ETA on a TTY,
 * one line per step (and per 25%) otherwise. Silent with --quiet or --json.
 */
export function progressPrinter(flags: OutputFlags): ((e: ProgressEvent) => void) | undefined {
  if (flags.quiet || flags.json) return undefined;
  const tty = process.stderr.isTTY;
  let step = '';
  let started = 0;
  let lastQuarter = -1;
  return (e) => {
    if (e.message) {
      // A line of its own, under the bar being drawn (left as it is); the step's next event starts a new bar.
      process.stderr.write(`${tty && step ? '\n' : ''}${e.message}\n`);
      step = '';
      return;
    }
    const now = Date.now();
    if (e.step !== step) {
      if (tty && step) process.stderr.write('\n');
      step = e.step;
      started = now;
      lastQuarter = -1;
    }
    const frac = e.total > 0 ? Math.min(1, e.done / e.total) : 0;
    const elapsed = (now - started) / 1000;
    const eta = frac > 0 && frac < 1 ? formatDuration((elapsed / frac) * (1 - frac)) : '';
    const count = e.unit === 'bytes' ? `${formatBytes(e.done)}/${formatBytes(e.total)}` : `${e.done}/${e.total}`;
    if (tty) {
      const width = 24;
      const bar = '█'.repeat(Math.round(frac * width)).padEnd(width, '░');
      const line = `${e.step.padEnd(10)} ${bar} ${count}${eta ? ` ETA ${eta}` : ''}${e.detail ? `  ${e.detail}` : ''}`;
      process.stderr.write(`\r\x1b[2K${line.slice(0, (process.stderr.columns ?? 120) - 1)}`);
      if (frac >= 1) {
        process.stderr.write('\n');
        step = '';
      }
    } else {
      const quarter = Math.floor(frac * 4);
      if (quarter !== lastQuarter) {
        lastQuarter = quarter;
        process.stderr.write(`${e.step}: ${count}${eta ? ` (ETA ${eta})` : ''}\n`);
      }
    }
  };
}

/** Prints a note to stderr unless quiet/json. */
export function note(flags: OutputFlags, text: string): void {
  if (!flags.quiet && !flags.json) process.stderr.write(`${text}\n`);
}

/** A two-column key/value block. */
export function keyValues(rows: [string, string][]): string {
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n');
}

/** Warnings go to stderr whatever the flags (--quiet silences progress, not problems); --json also carries them. */
export function warn(text: string): void {
  process.stderr.write(`warning: ${text}\n`);
}
