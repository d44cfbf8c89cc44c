import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import { ROOT, waitFor } from './exporter-process.js';

export const PROMETHEUS_BIN = process.env.KGE_PROMETHEUS ?? '/usr/bin/prometheus';

/** A port nobody listens on right now (the OS picks it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/** One answer of the HTTP API (/api/v1/...). */
export interface ApiAnswer<T = unknown> {
  status: 'success' | 'error';
  data: T;
  errorType?: string;
  error?: string;
}

export interface VectorSample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface QueryResult {
  resultType: 'vector' | 'scalar' | 'matrix' | 'string';
  result: VectorSample[] | [number, string];
}

export interface RunningPrometheus {
  url: string;
  dir: string;
  logs: () => string;
  api<T>(pathAndQuery: string): Promise<ApiAnswer<T>>;
  /** An instant query at the current time. */
  query(expr: string): Promise<ApiAnswer<QueryResult>>;
  stop(): Promise<void>;
}

let helpText: string | undefined;
/** `prometheus --help` of the installed binary (flags differ between 2.x and 3.x). */
function prometheusHelp(): string {
  if (helpText === undefined) {
    const r = spawnSync(PROMETHEUS_BIN, ['--help'], { encoding: 'utf8' });
    helpText = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  }
  return helpText;
}

/**
 * The flags that start the installed Prometheus in agent mode (scrape and remote-write only,
 * no local queries or rules): `--agent` from 3.0, `--enable-feature=agent` in 2.32-2.x.
 */
export function agentModeFlags(): string[] {
  const help = prometheusHelp();
  if (/^\s*--agent\b/m.test(help)) return ['--agent'];
  if (/agent mode/i.test(help)) return ['--enable-feature=agent'];
  throw new Error(`${PROMETHEUS_BIN} has no agent mode (Prometheus 2.32 or later needed)`);
}

/**
 * The flags that let the installed Prometheus accept remote write on /api/v1/write:
 * `--web.enable-remote-write-receiver` from 2.33 (3.x too), the feature flag before.
 */
export function remoteWriteReceiverFlags(): string[] {
  const help = prometheusHelp();
  if (help.includes('--web.enable-remote-write-receiver')) return ['--web.enable-remote-write-receiver'];
  if (help.includes('remote-write-receiver')) return ['--enable-feature=remote-write-receiver'];
  throw new Error(`${PROMETHEUS_BIN} cannot receive remote write`);
}

/**
 * Starts a real Prometheus on loopback in a temporary directory (config, rule files and TSDB
 * there) and waits until it is ready. `agent`: in agent mode (its WAL in the directory too);
 * `args`: more flags (e.g. {@link remoteWriteReceiverFlags}).
 */
export async function startPrometheus(opts: { config: string; files: Record<string, string>; agent?: boolean; args?: string[] }): Promise<RunningPrometheus> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kge-prometheus-'));
  for (const [name, text] of Object.entries(opts.files)) writeFileSync(path.join(dir, name), text);
  writeFileSync(path.join(dir, 'prometheus.yml'), opts.config);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    PROMETHEUS_BIN,
    [
      `--config.file=${path.join(dir, 'prometheus.yml')}`,
      ...(opts.agent ? [...agentModeFlags(), `--storage.agent.path=${path.join(dir, 'data-agent')}`] : [`--storage.tsdb.path=${path.join(dir, 'data')}`]),
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
      ...(opts.args ?? []),
    ],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`prometheus exited ${child.exitCode}:\n${log}`);
        return fetch(`${url}/-/ready`).then((r) => r.ok, () => false);
      },
      20_000,
      'prometheus ready',
    );
  } catch (err) {
    await stop();
    throw err;
  }
  const api = async <T>(pathAndQuery: string): Promise<ApiAnswer<T>> => (await fetch(`${url}${pathAndQuery}`)).json() as Promise<ApiAnswer<T>>;
  return {
    url,
    dir,
    logs: () => log,
    api,
    query: (expr) => api<QueryResult>(`/api/v1/query?query=${encodeURIComponent(expr)}`),
    stop,
  };
}

/** Whether a query answer holds data (a non-empty vector, or a scalar). */
export function hasData(answer: ApiAnswer<QueryResult>): boolean {
  if (answer.status !== 'success') return false;
  return answer.data.resultType === 'scalar' || (answer.data.result as unknown[]).length > 0;
}

// ---------------------------------------------------------------------------------------
// Scraping as the Prometheus Operator scrapes a ServiceMonitor target
// ---------------------------------------------------------------------------------------

type Obj = Record<string, any>;

/**
 * The first endpoint of deploy/base/servicemonitor.yaml, with the JSON 6902 patches (add and
 * replace, as deploy/components use them on the ServiceMonitor) of the given files applied,
 * paths relative to the repository root.
 */
export function serviceMonitorEndpoint(patchFiles: string[] = []): Obj {
  const sm = parse(readFileSync(path.join(ROOT, 'deploy/base/servicemonitor.yaml'), 'utf8')) as Obj;
  for (const file of patchFiles) {
    for (const op of parse(readFileSync(path.join(ROOT, file), 'utf8')) as Obj[]) {
      if (op.op !== 'replace' && op.op !== 'add') throw new Error(`${file}: op ${op.op} is not applied here`);
      const keys = (op.path as string).slice(1).split('/').map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
      const last = keys.pop()!;
      const parent = keys.reduce<any>((o, k) => o?.[Array.isArray(o) ? Number(k) : k], sm);
      if (parent === undefined || parent === null) throw new Error(`${file}: ${op.path}: no such parent`);
      if (Array.isArray(parent) && op.op === 'add') parent.splice(last === '-' ? parent.length : Number(last), 0, op.value);
      else parent[Array.isArray(parent) ? Number(last) : last] = op.value;
    }
  }
  return (sm.spec.endpoints as Obj[])[0]!;
}

/** The exporter pod a ServiceMonitor target stands for, as Kubernetes service discovery sees it. */
export interface OperatorTarget {
  namespace: string;
  service: string;
  pod: string;
  container: string;
  node: string;
}

/** A Prometheus Operator RelabelConfig (camelCase fields) as a Prometheus relabel_config. */
function relabelConfig(r: Obj): Obj {
  const names: Record<string, string> = { sourceLabels: 'source_labels', targetLabel: 'target_label', regex: 'regex', replacement: 'replacement', separator: 'separator', modulus: 'modulus', action: 'action' };
  return Object.fromEntries(Object.entries(r).map(([k, v]) => [names[k] ?? k, k === 'action' ? String(v).toLowerCase() : v]));
}

/**
 * The scrape config the Prometheus Operator generates for a ServiceMonitor endpoint, for one
 * static target: the target labels it always sets (namespace, service, pod, container, job,
 * endpoint; here from the __meta_kubernetes_* labels service discovery would attach), then the
 * endpoint's relabelings, and its honorLabels. Scraped every `interval` (a test scrapes faster
 * than the endpoint's 15 s).
 */
export function serviceMonitorScrapeConfig(endpoint: Obj, address: string, target: OperatorTarget, interval = '1s'): Obj {
  return {
    job_name: `serviceMonitor/${target.namespace}/${target.service}/0`,
    honor_labels: endpoint.honorLabels ?? false,
    scrape_interval: interval,
    scrape_timeout: interval,
    metrics_path: endpoint.path ?? '/metrics',
    scheme: endpoint.scheme ?? 'http',
    static_configs: [
      {
        targets: [address],
        labels: {
          __meta_kubernetes_namespace: target.namespace,
          __meta_kubernetes_service_name: target.service,
          __meta_kubernetes_pod_name: target.pod,
          __meta_kubernetes_pod_container_name: target.container,
          __meta_kubernetes_pod_node_name: target.node,
          __meta_kubernetes_endpoint_port_name: endpoint.port,
        },
      },
    ],
    relabel_configs: [
      { source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' },
      { source_labels: ['__meta_kubernetes_service_name'], target_label: 'service' },
      { source_labels: ['__meta_kubernetes_pod_name'], target_label: 'pod' },
      { source_labels: ['__meta_kubernetes_pod_container_name'], target_label: 'container' },
      { source_labels: ['__meta_kubernetes_service_name'], target_label: 'job' },
      { target_label: 'endpoint', replacement: endpoint.port },
      ...((endpoint.relabelings ?? []) as Obj[]).map(relabelConfig),
    ],
  };
}
