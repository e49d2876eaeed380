// Child-process entry: measures one model's speed and its own peak memory,
// prints one JSON line. Run by measureIsolated(); not a public API.
import { peakRssBytes, workerMain } from '@alki/core/node';
import { measureSpeed, type SpeedOptions } from './speed.js';

const [modelPath, json] = process.argv.slice(2);
const rssBefore = process.memoryUsage().rss;
await workerMain(async () => {
  const speed = await measureSpeed(modelPath, JSON.parse(json) as SpeedOptions);
  return { speed, peakRssBytes: peakRssBytes(), startRssBytes: rssBefore };
});
