// Node-only helpers (file system); the main entry stays usable in a browser.
export * from './index.js';
export { makeDirs, readRegularFile } from './files.js';
