import { readFileSync } from 'node:fs';
import { startSimulatedPods, type SimulatedPods } from '../../src/sim/simulated-pods.js';
import { scenarioCopy, scrape, seriesOf, startExporterProcess, waitFor, type RunningExporter } from './exporter-process.js';
import { replaceScenarioFile } from '../../src/sim/scenario-file.js';

/** A JSON log line of the exporter (pino), as written to stdout. */
export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** The exporter's JSON log lines; other output (the simulated library's stderr) is left out. */
export function logLines(exp: RunningExporter): LogLine[] {
  const out: LogLine[] = [];
  for (const l of exp.logs()) {
    if (!l.startsWith('{')) continue;
    try {
      out.push(JSON.parse(l) as LogLine);
    } catch {
      // a line cut by the process ending
    }
  }
  return out;
}

/** How many log lines start with `msg`, optionally only those with a field of that value. */
export function countLogs(exp: RunningExporter, msg: string, where: Record<string, unknown> = {}): number {
  return logLines(exp).filter((l) => l.msg.startsWith(msg) && Object.entries(where).every(([k, v]) => l[k] === v)).length;
}

/** The value of a series without labels (e.g. kube_gpu_exporter_kubelet_up), or undefined. */
export function plainValue(text: string, family: string): number | undefined {
  return seriesOf(text, family)[0]?.value;
}

export interface SimulatedExporter {
  exp: RunningExporter;
  pods: SimulatedPods;
  /** The writable scenario file the simulated library reads. */
  statePath: string;
  /** The scenario as shipped. */
  original: string;
  /** Rewrites the scenario: the shipped one plus these lines (empty: as shipped). */
  setScenario(extraLines: string): void;
  /** Waits until `n` samples newer than the current one were rendered; returns the last body. */
  samples(n: number, timeoutMs?: number): Promise<string>;
  stop(): Promise<number | null>;
}

/** The timestamp of the sample a body was rendered from (0 before the first sample). */
export function sampleTime(text: string): number {
  return plainValue(text, 'kube_gpu_exporter_last_sample_timestamp_seconds') ?? 0;
}

/**
 * The real CLI in its own process on a writable copy of a shipped scenario, with the
 * scenario's pods on a fake kubelet and host tree; ready (first sample taken, kubelet
 * answered) when this resolves.
 */
export async function startSimulatedExporter(scenario: string, args: string[] = []): Promise<SimulatedExporter> {
  const { node, statePath } = scenarioCopy(scenario);
  const original = readFileSync(statePath, 'utf8');
  const pods = await startSimulatedPods(node.statePath);
  let exp: RunningExporter;
  try {
    exp = await startExporterProcess({ library: node.libraryPath, statePath, args: [...pods.flags, '--sample-interval=100ms', ...args] });
  } catch (err) {
    await pods.stop();
    throw err;
  }
  await waitFor(async () => plainValue(await scrape(exp.url), 'kube_gpu_exporter_kubelet_up') === 1 && (await fetch(`${exp.url}/readyz`)).status === 200, 20_000, 'exporter ready with the kubelet answering');
  return {
    exp,
    pods,
    statePath,
    original,
    setScenario(extraLines) {
      replaceScenarioFile(statePath, extraLines ? `${original}\n${extraLines}\n` : original);
    },
    async samples(n, timeoutMs = 15_000) {
      let last = sampleTime(await scrape(exp.url));
      let seen = 0;
      let body = '';
      await waitFor(
        async () => {
          body = await scrape(exp.url);
          const t = sampleTime(body);
          if (t !== last) {
            seen++;
            last = t;
          }
          return seen >= n;
        },
        timeoutMs,
        `${n} new samples`,
      );
      return body;
    },
    async stop() {
      const code = await exp.stop();
      await pods.stop();
      return code;
    },
  };
}
