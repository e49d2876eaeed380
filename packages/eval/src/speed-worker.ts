// Child-process entry: measures one model's speed and its own peak memory,
// prints one JSON line. Run by measureIsolated(); not a public API.
import { readFileSync } from 'node:fs';
import { measureSpeed, type SpeedOptions } from './speed.js';

const [modelPath, json] = process.argv.slice(2);
// The parent holds our stdin open: when it goes away (killed, even with SIGKILL), so do we.
process.stdin.on('end', () => process.exit(1));
process.stdin.on('error', () => process.exit(1));
process.stdin.resume();
const rssBefore = process.memoryUsage().rss;
try {
  const speed = await measureSpeed(modelPath, JSON.parse(json) as SpeedOptions);
  process.stdout.write(`${JSON.stringify({ ok: true, speed, peakRssBytes: peakRss(), startRssBytes: rssBefore })}\n`);
} catch (e) {
  process.stdout.write(`${JSON.stringify({ ok: false, error: { message: (e as Error).message, code: (e as { code?: string }).code, hint: (e as { hint?: string }).hint } })}\n`);
  process.exitCode = 1;
}
process.stdin.destroy();

/**
 * This process's peak resident memory. Linux carries getrusage's maxrss across fork and exec, so a child of a
 * 5 GB parent (a build that still holds the float weights) reported 5 GB for a 1.5 GB model; VmHWM belongs to the
 * address space that exec created. Elsewhere maxrss is all there is.
 */
function peakRss(): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024;
}
