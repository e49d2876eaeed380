// Child-process entry: measures one model's speed and its own peak memory,
// prints one JSON line. Run by measureIsolated(); not a public API.
import { measureSpeed, type SpeedOptions } from './speed.js';

const [modelPath, json] = process.argv.slice(2);
// The parent holds our stdin open: when it goes away (killed, even with SIGKILL), so do we.
process.stdin.on('end', () => process.exit(1));
process.stdin.on('error', () => process.exit(1));
process.stdin.resume();
const rssBefore = process.memoryUsage().rss;
try {
  const speed = await measureSpeed(modelPath, JSON.parse(json) as SpeedOptions);
  const usage = process.resourceUsage();
  process.stdout.write(`${JSON.stringify({ ok: true, speed, peakRssBytes: usage.maxRSS * 1024, startRssBytes: rssBefore })}\n`);
} catch (e) {
  process.stdout.write(`${JSON.stringify({ ok: false, error: { message: (e as Error).message, code: (e as { code?: string }).code, hint: (e as { hint?: string }).hint } })}\n`);
  process.exitCode = 1;
}
process.stdin.destroy();
