import os from 'node:os';
import { COLLECTORS, missingNeeds } from '../collectors/index.js';
import { exporterError } from '../errors.js';
import { readDcgmCounters, type DcgmCounters } from './dcgm-counters.js';
import { NAMING_SCHEMES, type NamingScheme } from '../metrics/families.js';
import { MIN_SERIES_LABELS } from '../metrics/label-budget.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface Config {
  listenHost: string;
  listenPort: number;
  nvmlLibrary: string | undefined;
  driverRoot: string;
  nvmlRetryMs: number;
  nvmlEvents: boolean;
  sampleIntervalMs: number;
  /** How often slow-changing health values are re-read (effectively at least the sample interval). */
  healthIntervalMs: number;
  naming: NamingScheme;
  /** Families to export, by name in either scheme (undefined: all). */
  metricsInclude: RegExp | undefined;
  metricsExclude: RegExp | undefined;
  /** Most labels a series may carry, its name counted; pod labels beyond it are dropped. */
  metricsMaxLabels: number;
  /** dcgm-exporter's counters file: DCGM families limited to its fields. */
  dcgmCounters: DcgmCounters | undefined;
  /** The node label's name in the dcgm scheme: dcgm-exporter's Hostname, or hostname as its newer releases write it. */
  dcgmHostnameLabel: 'Hostname' | 'hostname';
  logLevel: LogLevel;
  nodeName: string;
  collectors: Record<string, boolean>;
  /** '' when pod attribution through the kubelet is off. */
  kubeletSocket: string;
  kubeletRefreshMs: number;
  kubeletTimeoutMs: number;
  procfsPath: string;
  podLogsPath: string;
  podMetadata: boolean;
  /** Watch DRA ResourceSlices to label devices allocated through ResourceClaims. */
  kubernetesDra: boolean;
  podLabelAllowlist: RegExp | undefined;
  kubeconfig: string | undefined;
  /** Web config file (TLS, basic auth, headers, rate limit); undefined: plain HTTP, no auth. */
  webConfigFile: string | undefined;
  /** Concurrent requests served at most (probes excepted); 0: no limit. */
  webMaxRequests: number;
  webReadHeaderTimeoutMs: number;
  webRequestTimeoutMs: number;
  /** How long SIGTERM/SIGINT may take before the process exits anyway. */
  shutdownTimeoutMs: number;
}

interface FlagDef<K extends keyof Config> {
  flag: string;
  env: string;
  key: K;
  accepts: string;
  help: string;
  /** Default as shown in --help and the README. */
  defaultText: string;
  parse(raw: string): Config[K] | undefined;
}

const BOOL_TRUE = ['true', '1', 'yes', 'on'];
const BOOL_FALSE = ['false', '0', 'no', 'off'];

const durationPattern = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

export function parseDuration(raw: string, minMs: number, maxMs: number): number | undefined {
  const m = durationPattern.exec(raw.trim());
  if (!m) return undefined;
  const ms = Number(m[1]) * UNIT_MS[m[2]!]!;
  return ms >= minMs && ms <= maxMs ? ms : undefined;
}

/** "[host]:port", ":port", "host:port" or "[v6]:port". */
export function parseListenAddress(raw: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(raw.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return { host: m[1] ?? m[2] ?? '', port };
}

function oneOf<T extends string>(values: readonly T[]) {
  return (raw: string): T | undefined => (values as readonly string[]).includes(raw) ? (raw as T) : undefined;
}

function parseBool(raw: string): boolean | undefined {
  const v = raw.trim().toLowerCase();
  if (BOOL_TRUE.includes(v)) return true;
  if (BOOL_FALSE.includes(v)) return false;
  return undefined;
}

function absolutePath(raw: string): string | undefined {
  return raw.startsWith('/') ? raw.replace(/(.)\/+$/, '$1') : undefined;
}

/** A regular expression that must match a whole name (a label key, a family name). */
function parseAnchoredRegex(raw: string): RegExp | undefined {
  try {
    return new RegExp(`^(?:${raw})$`);
  } catch {
    return undefined;
  }
}

function wholeNumber(min: number, max: number) {
  return (raw: string): number | undefined => {
    const v = raw.trim();
    if (!/^\d+$/.test(v)) return undefined;
    const n = Number(v);
    return n >= min && n <= max ? n : undefined;
  };
}

function define<K extends keyof Config>(def: FlagDef<K>): FlagDef<K> {
  return def;
}

/** The flag table: --help, the README and validation all come from here. */
export const FLAGS = [
  define({
    flag: '--web.listen-address', env: 'KGE_LISTEN_ADDRESS', key: 'listenHost', defaultText: ':9400',
    accepts: 'host:port, :port or [ipv6]:port', help: 'Address to serve /metrics, /healthz, /readyz and / on',
    parse: (raw) => parseListenAddress(raw)?.host,
  }),
  define({
    flag: '--web.config.file', env: 'KGE_WEB_CONFIG_FILE', key: 'webConfigFile', defaultText: '(none)',
    accepts: 'a path to a web config file (the Prometheus exporter toolkit format)',
    help: 'TLS, client certificates, basic auth, security headers and a rate limit for every page but the probes; changes are picked up without a restart',
    parse: (raw) => (raw.trim() ? raw.trim() : undefined),
  }),
  define({
    flag: '--web.max-requests', env: 'KGE_WEB_MAX_REQUESTS', key: 'webMaxRequests', defaultText: '40',
    accepts: 'a whole number from 0 to 10000 (0: no limit)', help: 'Requests served at once at most (/healthz and /readyz excepted); more get 503',
    parse: wholeNumber(0, 10_000),
  }),
  define({
    flag: '--web.read-header-timeout', env: 'KGE_WEB_READ_HEADER_TIMEOUT', key: 'webReadHeaderTimeoutMs', defaultText: '10s',
    accepts: 'a duration from 100ms to 5m', help: 'Time a client has to send its request headers (and finish the TLS handshake) before the connection is closed (checked every half of it, at most every 5 s)',
    parse: (raw) => parseDuration(raw, 100, 300_000),
  }),
  define({
    flag: '--web.request-timeout', env: 'KGE_WEB_REQUEST_TIMEOUT', key: 'webRequestTimeoutMs', defaultText: '30s',
    accepts: 'a duration from 1s to 10m, at least --web.read-header-timeout', help: 'Time a client has to send a whole request, and how long a connection may stall mid-request or mid-response',
    parse: (raw) => parseDuration(raw, 1000, 600_000),
  }),
  define({
    flag: '--shutdown-timeout', env: 'KGE_SHUTDOWN_TIMEOUT', key: 'shutdownTimeoutMs', defaultText: '8s',
    accepts: 'a duration from 1s to 10m', help: 'How long a clean stop on SIGTERM or SIGINT may take (finish scrapes in flight, end sampling, shut NVML down) before the process exits anyway; keep it under the pod\'s termination grace period',
    parse: (raw) => parseDuration(raw, 1000, 600_000),
  }),
  define({
    flag: '--nvml.library', env: 'KGE_NVML_LIBRARY', key: 'nvmlLibrary', defaultText: '(search)',
    accepts: 'a path to libnvidia-ml.so.1', help: 'NVML library to load; default: the loader path, then the standard driver directories on the host and under the driver root',
    parse: (raw) => (raw.trim() ? raw.trim() : undefined),
  }),
  define({
    flag: '--nvml.driver-root', env: 'KGE_NVML_DRIVER_ROOT', key: 'driverRoot', defaultText: '/run/nvidia/driver',
    accepts: 'an absolute directory path', help: 'Root of a containerised driver (GPU Operator) to search for NVML',
    parse: (raw) => (raw.startsWith('/') ? raw : undefined),
  }),
  define({
    flag: '--nvml.retry-interval', env: 'KGE_NVML_RETRY_INTERVAL', key: 'nvmlRetryMs', defaultText: '10s',
    accepts: 'a duration from 100ms to 1h (e.g. 500ms, 10s, 1m)', help: 'How often to retry loading NVML while it is unavailable',
    parse: (raw) => parseDuration(raw, 100, 3_600_000),
  }),
  define({
    flag: '--nvml.events', env: 'KGE_NVML_EVENTS', key: 'nvmlEvents', defaultText: 'true',
    accepts: 'true or false', help: 'Watch NVML events (Xid errors, ECC, GPU unavailable), read on the sampling thread once a tick without waiting',
    parse: parseBool,
  }),
  define({
    flag: '--sample-interval', env: 'KGE_SAMPLE_INTERVAL', key: 'sampleIntervalMs', defaultText: '1s',
    accepts: 'a duration from 100ms to 10m (e.g. 500ms, 1s, 30s)', help: 'How often GPUs are sampled in the background (scrapes never trigger sampling)',
    parse: (raw) => parseDuration(raw, 100, 600_000),
  }),
  define({
    flag: '--health.interval', env: 'KGE_HEALTH_INTERVAL', key: 'healthIntervalMs', defaultText: '30s',
    accepts: 'a duration from 100ms to 1h (e.g. 10s, 30s, 5m)',
    help: 'How often slow-changing memory health values (lifetime ECC counts, retired pages, remapped rows: the memory_errors collector) and values the hardware fixes (maximum clocks, maximum PCIe link generation and width) are re-read; in between the last values are exported. Never more often than --sample-interval',
    parse: (raw) => parseDuration(raw, 100, 3_600_000),
  }),
  define({
    flag: '--naming', env: 'KGE_NAMING', key: 'naming', defaultText: 'dcgm',
    accepts: NAMING_SCHEMES.join(' or '), help: 'Metric names: dcgm (dcgm-exporter compatible names, units and labels) or prometheus (base units, _total counters, _info identity)',
    parse: oneOf(NAMING_SCHEMES),
  }),
  define({
    flag: '--metrics.include', env: 'KGE_METRICS_INCLUDE', key: 'metricsInclude', defaultText: '(all)',
    accepts: 'a regular expression matching whole family names (e.g. DCGM_FI_DEV_.*|gpu_busy_seconds_total)',
    help: 'Export only the families whose name, in either naming scheme, matches; the exporter\'s own families (kube_gpu_exporter_*, process_*, nodejs_*) stay',
    parse: parseAnchoredRegex,
  }),
  define({
    flag: '--metrics.exclude', env: 'KGE_METRICS_EXCLUDE', key: 'metricsExclude', defaultText: '(none)',
    accepts: 'a regular expression matching whole family names', help: 'Leave out the families whose name, in either naming scheme, matches (the exporter\'s own families too)',
    parse: parseAnchoredRegex,
  }),
  define({
    flag: '--metrics.max-labels', env: 'KGE_METRICS_MAX_LABELS', key: 'metricsMaxLabels', defaultText: '30',
    accepts: `a whole number from the labels a device series carries without pod labels (${MIN_SERIES_LABELS.dcgm} in the dcgm scheme, ${MIN_SERIES_LABELS.prometheus} in the prometheus scheme) to 1000`,
    help: "Most labels a series carries, its name counted (Mimir's and Grafana Cloud's default limit is 30): pod labels copied from pod metadata beyond it are dropped, last in name order first",
    parse: wholeNumber(1, 1000),
  }),
  define({
    flag: '--dcgm.counters', env: 'KGE_DCGM_COUNTERS', key: 'dcgmCounters', defaultText: '(all)',
    accepts: "a path to dcgm-exporter's counters CSV (DCGM_FI_FIELD, gauge|counter|label, help)",
    help: "Export only the DCGM fields the file lists, read unchanged from dcgm-exporter's counters file; fields the exporter does not have are logged once; families without a DCGM field are not affected",
    parse: (raw) => (raw.trim() ? readDcgmCounters(raw.trim()) : undefined),
  }),
  define({
    flag: '--dcgm.hostname-label', env: 'KGE_DCGM_HOSTNAME_LABEL', key: 'dcgmHostnameLabel', defaultText: 'Hostname',
    accepts: 'Hostname or hostname', help: 'Name of the node label in the dcgm naming: Hostname as dcgm-exporter has long written it, or hostname as its newer releases do',
    parse: oneOf(['Hostname', 'hostname'] as const),
  }),
  define({
    flag: '--log.level', env: 'KGE_LOG_LEVEL', key: 'logLevel', defaultText: 'info',
    accepts: LOG_LEVELS.join(', '), help: 'Log level (logs are JSON lines on stdout)',
    parse: oneOf(LOG_LEVELS),
  }),
  define({
    flag: '--node-name', env: 'NODE_NAME', key: 'nodeName', defaultText: '(host name)',
    accepts: 'a non-empty string', help: 'Node name for the Hostname/node label (set NODE_NAME from the downward API)',
    parse: (raw) => (raw.trim() ? raw.trim() : undefined),
  }),
  define({
    flag: '--kubelet.socket', env: 'KGE_KUBELET_SOCKET', key: 'kubeletSocket', defaultText: '/var/lib/kubelet/pod-resources/kubelet.sock',
    accepts: 'an absolute path, or none', help: 'The kubelet PodResources socket that maps devices to pods (mount its directory, not the file); none turns pod labels off',
    parse: (raw) => (raw.trim() === 'none' ? '' : absolutePath(raw.trim())),
  }),
  define({
    flag: '--kubelet.refresh-interval', env: 'KGE_KUBELET_REFRESH_INTERVAL', key: 'kubeletRefreshMs', defaultText: '5s',
    accepts: 'a duration from 500ms to 10m', help: 'How often the device-to-pod mapping is read from the kubelet (List each time, GetAllocatableResources when the pods change or once a minute; failures retry sooner, with backoff)',
    parse: (raw) => parseDuration(raw, 500, 600_000),
  }),
  define({
    flag: '--kubelet.timeout', env: 'KGE_KUBELET_TIMEOUT', key: 'kubeletTimeoutMs', defaultText: '2s',
    accepts: 'a duration from 100ms to 1m', help: 'Deadline of each kubelet call; the last good mapping stays in use after a timeout',
    parse: (raw) => parseDuration(raw, 100, 60_000),
  }),
  define({
    flag: '--path.procfs', env: 'KGE_PATH_PROCFS', key: 'procfsPath', defaultText: '/proc',
    accepts: 'an absolute directory path', help: "The host's /proc (per-process attribution reads /proc/<pid>/cgroup; needs hostPID)",
    parse: absolutePath,
  }),
  define({
    flag: '--path.pod-logs', env: 'KGE_PATH_POD_LOGS', key: 'podLogsPath', defaultText: '/var/log',
    accepts: 'an absolute directory path', help: "The host's kubelet log root (its pods/ and containers/ directories name the pods and containers of processes)",
    parse: absolutePath,
  }),
  define({
    flag: '--kubernetes.pod-metadata', env: 'KGE_KUBERNETES_POD_METADATA', key: 'podMetadata', defaultText: 'false',
    accepts: 'true or false', help: "Add pod_uid and the pod labels matching --kubernetes.pod-labels to pod series, from a watch on this node's pods in the Kubernetes API",
    parse: parseBool,
  }),
  define({
    flag: '--kubernetes.pod-labels', env: 'KGE_KUBERNETES_POD_LABELS', key: 'podLabelAllowlist', defaultText: '(none)',
    accepts: 'a regular expression matching whole label keys (e.g. app|team|app\\.kubernetes\\.io/name)', help: 'Pod label keys to copy onto pod series as label_<key> (with --kubernetes.pod-metadata=true)',
    parse: parseAnchoredRegex,
  }),
  define({
    flag: '--kubernetes.dra', env: 'KGE_KUBERNETES_DRA', key: 'kubernetesDra', defaultText: 'false',
    accepts: 'true or false',
    help: "Label GPUs and MIG devices allocated through DRA ResourceClaims (NVIDIA's gpu.nvidia.com driver) with their pods, from a watch on this node's ResourceSlices in the Kubernetes API (needs get/list/watch on resourceslices)",
    parse: parseBool,
  }),
  define({
    flag: '--kubernetes.kubeconfig', env: 'KGE_KUBECONFIG', key: 'kubeconfig', defaultText: '(in-cluster)',
    accepts: 'a path to a kubeconfig file', help: 'Kubeconfig for the Kubernetes API (default: the pod\'s service account)',
    parse: (raw) => (raw.trim() ? raw.trim() : undefined),
  }),
] as const;


export function collectorEnv(name: string): string {
  return `KGE_COLLECTOR_${name.toUpperCase()}`;
}

export function defaultConfig(): Config {
  return {
    listenHost: '',
    listenPort: 9400,
    nvmlLibrary: undefined,
    driverRoot: '/run/nvidia/driver',
    nvmlRetryMs: 10_000,
    nvmlEvents: true,
    sampleIntervalMs: 1000,
    healthIntervalMs: 30_000,
    naming: 'dcgm',
    metricsInclude: undefined,
    metricsExclude: undefined,
    metricsMaxLabels: 30,
    dcgmCounters: undefined,
    dcgmHostnameLabel: 'Hostname',
    logLevel: 'info',
    nodeName: os.hostname(),
    collectors: Object.fromEntries(COLLECTORS.map((c) => [c.name, c.defaultEnabled])),
    kubeletSocket: '/var/lib/kubelet/pod-resources/kubelet.sock',
    kubeletRefreshMs: 5000,
    kubeletTimeoutMs: 2000,
    procfsPath: '/proc',
    podLogsPath: '/var/log',
    podMetadata: false,
    kubernetesDra: false,
    podLabelAllowlist: undefined,
    kubeconfig: undefined,
    webConfigFile: undefined,
    webMaxRequests: 40,
    webReadHeaderTimeoutMs: 10_000,
    webRequestTimeoutMs: 30_000,
    shutdownTimeoutMs: 8000,
  };
}

export type ParseResult = { kind: 'run'; config: Config } | { kind: 'help' } | { kind: 'version' };

/**
 * Flags win over environment variables, which win over defaults. Any bad value throws an
 * ExporterError naming the flag (or variable) and what it accepts.
 */
export function parseFlags(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): ParseResult {
  const config = defaultConfig();
  const apply = (def: (typeof FLAGS)[number], raw: string, source: 'flag' | 'env'): void => {
    const value = def.parse(raw);
    if (value === undefined) {
      throw source === 'flag'
        ? exporterError('KGE_FLAG_INVALID', def.flag, raw, def.accepts)
        : exporterError('KGE_ENV_INVALID', def.env, def.flag, raw, def.accepts);
    }
    if (def.key === 'listenHost') {
      const addr = parseListenAddress(raw)!;
      config.listenHost = addr.host;
      config.listenPort = addr.port;
    } else {
      (config as unknown as Record<string, unknown>)[def.key] = value;
    }
  };

  for (const def of FLAGS) {
    const raw = env[def.env];
    if (raw !== undefined && raw !== '') apply(def, raw, 'env');
  }
  for (const c of COLLECTORS) {
    const raw = env[collectorEnv(c.name)];
    if (raw === undefined || raw === '') continue;
    const v = parseBool(raw);
    if (v !== undefined) config.collectors[c.name] = v;
    else throw exporterError('KGE_ENV_INVALID', collectorEnv(c.name), `--collector.${c.name}`, raw, 'true or false');
  }

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') return { kind: 'help' };
    if (arg === '--version') return { kind: 'version' };
    if (!arg.startsWith('--')) throw exporterError('KGE_FLAG_UNEXPECTED_ARGUMENT', arg);
    const eq = arg.indexOf('=');
    const name = eq < 0 ? arg : arg.slice(0, eq);
    const collector = /^--(no-)?collector\.(.+)$/.exec(name);
    if (collector) {
      const cname = collector[2]!;
      if (!COLLECTORS.some((c) => c.name === cname)) throw exporterError('KGE_FLAG_UNKNOWN', name);
      if (eq >= 0) throw exporterError('KGE_FLAG_INVALID', name, arg.slice(eq + 1), `no value (use --collector.${cname} or --no-collector.${cname})`);
      config.collectors[cname] = !collector[1];
      continue;
    }
    const def = FLAGS.find((f) => f.flag === name);
    if (!def) throw exporterError('KGE_FLAG_UNKNOWN', name);
    let raw: string | undefined;
    if (eq >= 0) raw = arg.slice(eq + 1);
    else {
      raw = argv[i + 1];
      if (raw === undefined || raw.startsWith('--')) throw exporterError('KGE_FLAG_MISSING_VALUE', def.flag, def.accepts);
      i++;
    }
    apply(def, raw, 'flag');
  }
  if (config.webReadHeaderTimeoutMs > config.webRequestTimeoutMs) throw exporterError('KGE_FLAG_CONFLICT', '--web.read-header-timeout', '--web.request-timeout');
  if (config.podLabelAllowlist && !config.podMetadata) throw exporterError('KGE_FLAG_REQUIRES', '--kubernetes.pod-labels', '--kubernetes.pod-metadata=true');
  const [missing] = missingNeeds(config.collectors);
  if (missing) throw exporterError('KGE_COLLECTOR_NEEDED', missing.off, missing.neededBy);
  if (config.metricsMaxLabels < MIN_SERIES_LABELS[config.naming]) {
    throw exporterError('KGE_MAX_LABELS_TOO_LOW', '--metrics.max-labels', config.metricsMaxLabels, MIN_SERIES_LABELS[config.naming], config.naming);
  }
  return { kind: 'run', config };
}

export function helpText(): string {
  const lines = ['Usage: kube-gpu-exporter [flags]', '', 'Flags (each also read from the environment variable shown):'];
  for (const f of FLAGS) {
    lines.push(`  ${f.flag}=<value>   [${f.env}] default ${f.defaultText}`, `      ${f.help}. Accepts ${f.accepts}.`);
  }
  lines.push('', 'Collectors (--collector.<name> enables, --no-collector.<name> disables; env KGE_COLLECTOR_<NAME>=true|false):');
  const width = Math.max(...COLLECTORS.map((c) => c.name.length));
  for (const c of COLLECTORS) lines.push(`  ${c.name.padEnd(width)} ${c.defaultEnabled ? 'on ' : 'off'}  ${c.description}`);
  lines.push('', '  --help      this text', '  --version   print the version');
  return lines.join('\n');
}
