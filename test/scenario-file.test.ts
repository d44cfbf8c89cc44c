import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NvmlBinding } from '../src/native/nvml-binding.js';
import { appendScenarioLines, replaceScenarioFile } from '../src/sim/scenario-file.js';
import { scenarioCopy, waitFor } from './support/exporter-process.js';

/** Why scenario files are replaced in one step, and that the helper does so. */
const { node, statePath } = scenarioCopy('h100x8');
const original = readFileSync(statePath, 'utf8');
let nvml: NvmlBinding;

beforeAll(() => {
  process.env.KGE_SIM_STATE = statePath;
  nvml = new NvmlBinding({ libraryPath: node.libraryPath });
  nvml.init();
});
afterAll(() => nvml.shutdown());

describe('scenario files', () => {
  it('an empty file is a valid scenario without GPUs: a rewrite read between truncate and write loses every GPU', async () => {
    expect(nvml.deviceCount()).toBe(8);
    replaceScenarioFile(statePath, '');
    await waitFor(() => nvml.deviceCount() === 0, 5000, 'the library to re-read the empty file');
    replaceScenarioFile(statePath, original);
    await waitFor(() => nvml.deviceCount() === 8, 5000, 'the GPUs back');
  });

  it('a reader never sees a replaced file half written, and no temporary file is left', async () => {
    const a = original;
    const b = original + '# padding\n'.repeat(2000);
    const flag = new Int32Array(new SharedArrayBuffer(4));
    const reader = new Worker(
      `const { readFileSync } = require('node:fs');
       const { workerData, parentPort } = require('node:worker_threads');
       const flag = new Int32Array(workerData.flag);
       let reads = 0, torn = 0;
       while (Atomics.load(flag, 0) === 0) {
         const t = readFileSync(workerData.file, 'utf8');
         if (reads++ === 0) parentPort.postMessage('reading');
         if (t !== workerData.a && t !== workerData.b) torn++;
       }
       parentPort.postMessage({ reads, torn });`,
      { eval: true, workerData: { file: statePath, a, b, flag: flag.buffer } },
    );
    const messages: unknown[] = [];
    reader.on('message', (m) => messages.push(m));
    await waitFor(() => messages.includes('reading'), 10_000, 'the reader to start');
    replaceScenarioFile(statePath, a);
    for (let i = 0; i < 400; i++) replaceScenarioFile(statePath, i % 2 ? a : b);
    appendScenarioLines(statePath, '# padding\n'.repeat(2000)); // a + the padding: b
    Atomics.store(flag, 0, 1);
    const { reads, torn } = await waitFor(() => messages.find((m): m is { reads: number; torn: number } => typeof m === 'object'), 10_000, 'the reader to stop');
    await reader.terminate();
    expect(reads).toBeGreaterThan(0);
    expect(torn).toBe(0);
    expect(readFileSync(statePath, 'utf8')).toBe(b);
    expect(readdirSync(path.dirname(statePath))).toEqual([path.basename(statePath)]);
    replaceScenarioFile(statePath, original);
  });
});
