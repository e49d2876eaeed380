// Child-process entry of smokeTest (preflight.ts): runs a freshly written model on a few tokens; not a public API.
import { peakRssBytes, workerMain } from '@alki/core/node';
import { smokeTestInProcess } from './preflight.js';

const [modelPath, ids] = process.argv.slice(2);
await workerMain(async () => {
  await smokeTestInProcess(modelPath, JSON.parse(ids) as number[]);
  return { peakRssBytes: peakRssBytes() };
});
