import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import pino from 'pino';
import { defaultConfig, type Config } from '../../src/config/flags.js';
import { Exporter, type ExporterOptions } from '../../src/exporter.js';
import { scenarioCopy, waitFor } from './exporter-process.js';

export interface LogRecord {
  level: number;
  msg: string;
  [k: string]: unknown;
}

/**
 * An Exporter in this process (its NVML worker is a real thread) with logs captured. No
 * kubelet and an empty /proc unless a test asks: the simulated pids must not meet real ones.
 */
/** A debug-level logger whose records are kept, parsed, in `logs` (per test: no shared log). */
export function capturingLogger(): { logger: pino.Logger; logs: LogRecord[] } {
  const logs: LogRecord[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as LogRecord);
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), logs };
}

export async function startInProcess(
  overrides: Partial<Config>,
  options: Omit<ExporterOptions, 'config' | 'logger'> = {},
): Promise<{ exporter: Exporter; url: string; logs: LogRecord[] }> {
  const { logger, logs } = capturingLogger();
  const config: Config = { ...defaultConfig(), listenHost: '127.0.0.1', listenPort: 0, sampleIntervalMs: 100, nodeName: 'test-node', kubeletSocket: '', procfsPath: '/nonexistent-proc', ...overrides };
  const exporter = new Exporter({ ...options, config, logger });
  const addr = await exporter.start();
  return { exporter, url: `http://127.0.0.1:${addr.port}`, logs };
}

/**
 * A writable copy of a shipped scenario and an Exporter in this process on it, ready (/readyz
 * answered 200): the tests change the copy while it runs.
 */
export async function startScenarioInProcess(
  scenario: string,
  overrides: Partial<Config> = {},
  options: Omit<ExporterOptions, 'config' | 'logger'> = {},
): Promise<{ exporter: Exporter; url: string; logs: LogRecord[]; statePath: string; original: string }> {
  const { node, statePath } = scenarioCopy(scenario);
  const original = readFileSync(statePath, 'utf8');
  process.env.KGE_SIM_STATE = statePath;
  const started = await startInProcess({ nvmlLibrary: node.libraryPath, ...overrides }, options);
  await waitFor(async () => (await fetch(`${started.url}/readyz`)).status === 200, 10_000, 'readyz');
  return { ...started, statePath, original };
}
