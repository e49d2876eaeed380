// Node-only helpers (file system); the main entry stays usable in a browser.
export * from './index.js';
export { makeDirs, readRegularFile, readUtf8Text, READ_NONBLOCK } from './files.js';
export { GarbageMeter, enableGarbageCollection } from './gc.js';
export { peakRssBytes, runWorker, workerMain, workerProgress, workerScript } from './worker.js';
