import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ContainerDevices, ListPodResourcesResponse, PodResources } from '../src/attribution/kubelet/podresources.js';
import { COLLECTORS } from '../src/collectors/index.js';
import { collectorEnv, FLAGS, LOG_LEVELS, parseFlags } from '../src/config/flags.js';
import { ERROR_CODES, ExporterError } from '../src/errors.js';
import { NAMING_SCHEMES } from '../src/metrics/families.js';
import { simulatedNode } from '../src/sim/harness.js';
import { simDevices } from '../src/sim/kubelet-scenario.js';
import { ROOT, scrape, seriesOf, waitFor } from './support/exporter-process.js';
import { Prng } from './support/prng.js';
import { promtoolFindings } from './support/promtool.js';
import type { CaseResult } from './support/sim-fuzz-driver.js';
import { countLogs, plainValue, startSimulatedExporter, type SimulatedExporter } from './support/simulated-exporter.js';
import { replaceScenarioFile } from '../src/sim/scenario-file.js';

/**
 * Seeded random and hostile input to everything the exporter parses: flags and environment,
 * scenario files read by the simulated NVML (through the real binding), and kubelet responses
 * (through the real exporter process). A failure names the seed that reproduces it.
 */
const SEED = Number(process.env.FUZZ_SEED ?? 20240611);

const running: SimulatedExporter[] = [];
afterAll(async () => {
  await Promise.all(running.map((r) => r.stop()));
});

/** Values that have broken parsers before: empty, blank, huge, odd numbers, paths, regexes, Unicode, control characters. */
const HOSTILE = [
  '', ' ', '\t', '\n', 'x\ny', '=', '==', '-', '--', '-1', '0', '00', '1e309', 'NaN', 'Infinity', '-Infinity', '1e3s', '0x10s', '1.5.5s',
  `${'9'.repeat(400)}ms`, '100ms ', ' 1s', '1S', '1 s', '.5s', '5.s', '0ms', '99999h', '1h', '10m', '100ms', '\u0000', 'a'.repeat(100_000), '/',
  '/tmp', 'relative/path', '//', '/a/../b', '/trailing///', ':9400', '[::1]:9400', '[::1]', '0.0.0.0:65536', ':65535', ':0', 'host:port',
  '[zz]:80', 'a b:80', 'true', 'FALSE', 'yes', 'On', 'maybe', 'dcgm', 'prometheus', 'DCGM', 'none', '(', ')', '[', '*', '(a+)+$', '\\', '.*',
  'app|team', '😀', 'ü', '\u202e', '\ud83d', '%s%s%n', '${HOME}', '$(true)', '"', "'", '__proto__', 'constructor', 'toString', 'trace', 'silent',
];
const ALPHABET = 'abcXYZ019 .:/-_=[]()*+?|\\"\'\n\t\u0000é😀';

function hostileValue(r: Prng): string {
  return r.chance(0.7) ? r.pick(HOSTILE) : r.string(r.int(0, 24), ALPHABET);
}

function randomArgv(r: Prng): string[] {
  const argv: string[] = [];
  for (let n = r.int(0, 6); n > 0; n--) {
    const flag = r.pick(FLAGS).flag;
    const collector = r.pick(COLLECTORS).name;
    switch (r.int(0, 8)) {
      case 0:
      case 1:
        argv.push(`${flag}=${hostileValue(r)}`);
        break;
      case 2:
        argv.push(flag, hostileValue(r));
        break;
      case 3:
        argv.push(flag); // its value missing, or the next flag taken for it
        break;
      case 4:
        argv.push(r.pick([`--collector.${collector}`, `--no-collector.${collector}`, `--collector.${collector}=${hostileValue(r)}`, `--collector.${hostileValue(r)}`]));
        break;
      case 5:
        argv.push(`--${hostileValue(r)}`);
        break;
      case 6:
        argv.push(hostileValue(r));
        break;
      case 7:
        argv.push(r.pick(['--help', '-h', '--version', '--', '---', '-x']));
        break;
      default:
        argv.push(`${flag}${r.pick(['', '=', '=='])}${r.string(r.int(0, 8), ALPHABET)}`);
    }
  }
  return argv;
}

function randomEnv(r: Prng): Record<string, string> {
  const env: Record<string, string> = {};
  for (let n = r.int(0, 3); n > 0; n--) {
    const name = r.chance(0.8) ? r.pick(FLAGS).env : collectorEnv(r.pick(COLLECTORS).name);
    env[name] = hostileValue(r);
  }
  return env;
}

/** What every accepted configuration must satisfy, whatever the input. */
function checkConfig(config: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(config)) {
    if (typeof value === 'number') expect(Number.isFinite(value) && value >= 0, `${key} = ${value}`).toBe(true);
  }
  expect(Number.isInteger(config.listenPort) && (config.listenPort as number) <= 65535).toBe(true);
  expect(NAMING_SCHEMES).toContain(config.naming);
  expect(LOG_LEVELS).toContain(config.logLevel);
  for (const v of Object.values(config.collectors as Record<string, unknown>)) expect(typeof v).toBe('boolean');
  for (const key of ['driverRoot', 'procfsPath', 'podLogsPath']) expect(String(config[key]).startsWith('/'), `${key} = ${String(config[key])}`).toBe(true);
  expect(config.kubeletSocket === '' || String(config.kubeletSocket).startsWith('/')).toBe(true);
  expect(String(config.nodeName).trim()).not.toBe('');
}

describe('fuzzing flags and environment variables', () => {
  it('parseFlags returns a configuration or throws one ExporterError with a one-line message naming what was wrong', () => {
    const r = new Prng(SEED);
    const seen = { run: 0, help: 0, version: 0, error: 0 };
    for (let i = 0; i < 3000; i++) {
      const argv = randomArgv(r);
      const env = randomEnv(r);
      const where = `seed ${SEED}, case ${i}: argv ${JSON.stringify(argv)}, env ${JSON.stringify(env)}`;
      let result: ReturnType<typeof parseFlags> | undefined;
      try {
        result = parseFlags(argv, env);
      } catch (err) {
        expect(err, where).toBeInstanceOf(ExporterError);
        const e = err as ExporterError;
        expect(Object.keys(ERROR_CODES), where).toContain(e.code);
        expect(e.message.length, where).toBeGreaterThan(0);
        expect(e.message, where).not.toMatch(/[\n\r\u0000]/);
        // it names the flag, the variable or the argument at fault
        const named = [...FLAGS.flatMap((f) => [f.flag, f.env]), ...COLLECTORS.flatMap((c) => [`--collector.${c.name}`, `--no-collector.${c.name}`, collectorEnv(c.name)]), ...argv, ...argv.map((a) => a.slice(0, a.indexOf('=')))].some(
          (n) => e.message.includes(JSON.stringify(n)) || (n !== '' && e.message.includes(n)),
        );
        expect(named, `${where}: ${e.message}`).toBe(true);
        seen.error++;
        continue;
      }
      seen[result.kind]++;
      if (result.kind === 'run') checkConfig(result.config as unknown as Record<string, unknown>);
    }
    // the generator reaches every outcome, so the checks above ran on each
    expect(Math.min(seen.run, seen.help, seen.version, seen.error), JSON.stringify(seen)).toBeGreaterThan(10);
  });
});

// --- scenario files --------------------------------------------------------------------

const TOKENS = [
  '0', '-1', '1e308', '1e-308', '18446744073709551616', '0x', '0xFFFFFFFFFFFFFFFFFF', 'nan', 'inf', '-0', '1GiB', '1TiB', '9999999999999999999999',
  '*', '16', '7', '255', '256', 'gpu.99.name x', 'gpu.*.mig.7.uuid MIG-x', 'proc.300.pid 1', 'device_count 17', 'device_count 0', 'device_count -3',
  'walk(', 'walk()', 'walk(1,2)', 'walk(1,100,0,5,1000)', 'walk(1,0,100,5,0)', 'steps(', 'steps()', 'steps(1000:1,0:2)', 'steps(x:y)',
  `steps(${Array.from({ length: 40 }, (_, i) => `${i}:1`).join(',')})`, 'cycle(0,0:1)', 'cycle(1000)', 'linear(1)', 'linear(,)', 'linear(1,2,3)',
  'fault', 'fault * *', 'fault nvmlDeviceGetTemperature 99 999', 'fault * * -5', `fault ${'f'.repeat(200)} * 999`, 'event 0 xid', 'event 9 xid 13 5000',
  'event 0 nosuch 0 1', 'event 0 xid 13 -1', 'event 0 xid 13 1000 4294967296 0', 'gpu.0.pci_bus_id nonsense', 'gpu.0.uuid', 'gpu.', 'gpu..name x',
  'proc.0.gpu 99', 'proc.x.pid 1', '#', '\u0000', '\u00ff\u00fe', 'x'.repeat(3000), `gpu.0.name ${'N'.repeat(200)}`, `gpu.0.uuid ${'U'.repeat(95)}`,
  `gpu.0.mig.0.profile ${'p'.repeat(31)}`, 'gpu.0.mig_mode 1', 'gpu.0.mig.3.uuid MIG-odd', 'gpu.0.mig.3.gi 4294967295', '\r\n', '\t\t',
];

/** One corrupted copy of a scenario: bytes flipped, spans cut, lines moved or repeated, tokens and odd lines put in. */
function corrupt(text: string, r: Prng): string {
  let lines = text.split('\n');
  for (let n = r.int(1, 4); n > 0; n--) {
    const at = r.int(0, lines.length - 1);
    switch (r.int(0, 7)) {
      case 0: {
        const line = lines[at]!;
        const i = r.int(0, line.length);
        lines[at] = line.slice(0, i) + String.fromCharCode(r.pick([0, 9, 10, 35, 40, 41, 44, 46, 42, 255, r.int(32, 126)])) + line.slice(i + 1);
        break;
      }
      case 1: {
        const line = lines[at]!;
        const i = r.int(0, line.length);
        lines[at] = line.slice(0, i) + line.slice(i + r.int(1, 12));
        break;
      }
      case 2:
        lines.splice(at, r.int(1, 20));
        break;
      case 3:
        lines.splice(at, 0, ...lines.slice(at, at + r.int(1, 40)));
        break;
      case 4: {
        const other = r.int(0, lines.length - 1);
        [lines[at], lines[other]] = [lines[other]!, lines[at]!];
        break;
      }
      case 5: {
        const words = lines[at]!.split(' ');
        words[r.int(0, words.length - 1)] = r.pick(TOKENS);
        lines[at] = words.join(' ');
        break;
      }
      case 6:
        lines.splice(at, 0, r.pick(TOKENS));
        break;
      default:
        lines = lines.slice(0, at);
    }
  }
  return lines.join('\n');
}

const SHIPPED = ['workstation', 'h100x8', 'a100-mig', 'gpu-lost', 'old-driver'];

describe('fuzzing scenario files read by the simulated NVML', () => {
  it('corrupted scenarios, at init and as live changes, never crash the process; bad ones are refused as documented', { timeout: 180_000 }, () => {
    const r = new Prng(SEED + 1);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kge-fuzz-sim-'));
    const files: string[] = [];
    for (const name of SHIPPED) {
      const text = readFileSync(simulatedNode(name).statePath, 'utf8');
      for (let i = 0; i < 50; i++) {
        const file = path.join(dir, `${name}-${String(i).padStart(3, '0')}.sim`);
        writeFileSync(file, corrupt(text, r), 'latin1');
        files.push(file);
      }
    }
    const node = simulatedNode('h100x8'); // the full library: every symbol
    const run = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/support/sim-fuzz-driver.ts'), node.libraryPath, node.statePath, ...files], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 170_000,
      maxBuffer: 64 * 1024 * 1024,
    });
    const out = run.stdout.split('\n');
    const lastCase = out.filter((l) => l.startsWith('case ')).pop();
    const what = `seed ${SEED + 1}; exit ${run.status}, signal ${run.signal}; last case ${lastCase ?? '(none)'}\n${run.stderr.split('\n').filter((l) => !l.startsWith('kge-sim: ')).slice(-20).join('\n')}`;
    expect(run.signal, what).toBeNull();
    expect(run.status, what).toBe(0);
    expect(out, what).toContain('finished');
    const results = out.filter((l) => l.startsWith('result ')).map((l) => JSON.parse(l.slice(7)) as CaseResult);
    expect(results).toHaveLength(files.length);

    const refused = results.filter((x) => x.init !== 'ok');
    for (const x of refused) {
      // a scenario that does not parse fails init with UNKNOWN, naming file and line on stderr ...
      expect(x.init, x.file).toBe('UNKNOWN');
      expect(run.stderr, x.file).toContain(`kge-sim: ${x.file}:`);
      // ... and as a live change it is refused: the previous scenario stays
      expect(x.gpusAfterReload, x.file).toBe(x.gpusBeforeReload);
    }
    for (const x of results.filter((y) => y.init === 'ok')) expect(x.gpusAfterReload, x.file).toBe(x.gpus);
    // both kinds occur, so both paths were exercised
    expect(refused.length).toBeGreaterThan(20);
    expect(results.length - refused.length).toBeGreaterThan(20);
  });

  it('the exporter process keeps serving valid /metrics while its scenario file is corrupted and repaired underneath', { timeout: 90_000 }, async () => {
    const s = await startSimulatedExporter('a100-mig');
    running.push(s);
    const r = new Prng(SEED + 2);
    for (let i = 0; i < 12; i++) {
      replaceScenarioFile(s.statePath, corrupt(s.original, r), 'latin1');
      const text = await s.samples(2);
      expect(await promtoolFindings(text), `seed ${SEED + 2}, change ${i}`).toEqual([]);
    }
    s.setScenario('');
    const text = await s.samples(3);
    expect(await promtoolFindings(text)).toEqual([]);
    expect(seriesOf(text, 'kube_gpu_exporter_collector_success').every((x) => x.value === 1)).toBe(true);
    expect(countLogs(s.exp, 'sampling worker')).toBe(0);
    expect(await s.stop()).toBe(0);
  });
});

// --- kubelet responses -------------------------------------------------------------------

const NAME_PARTS = ['"', '\\', '\n', '\\n', '\\"', '}', '{', ',', '=', ' ', '', 'é', '日本', '😀', '\u0301', '\u202e', '\t', '\r', 'a', 'pod', '#', '$', '\u00a0'];

function hostileName(r: Prng): string {
  switch (r.int(0, 5)) {
    case 0:
      return '';
    case 1:
      return 'x'.repeat(r.pick([253, 1000, 20_000]));
    case 2:
      return r.string(r.int(1, 6), 'abc-0123');
    default: {
      let s = '';
      for (let n = r.int(1, 8); n > 0; n--) s += r.pick(NAME_PARTS);
      return s;
    }
  }
}

const RESOURCES = ['nvidia.com/gpu', 'nvidia.com/gpu.shared', 'nvidia.com/mig-3g.40gb', 'nvidia.com/mig-1g.10gb', 'nvidia.com/GPU', 'nvidia.com/mig-', 'nvidia.com/mig-99g.1tb', 'example.com/nic', '', '😀/gpu'];

interface Holder {
  uuid: string;
  namespace: string;
  pod: string;
  container: string;
}

/** A random List response for the node's devices; records which whole-GPU ids went to whom. */
function randomList(r: Prng, gpus: string[], migs: string[], holders: Holder[]): ListPodResourcesResponse {
  const pods: PodResources[] = [];
  for (let p = r.int(0, 40); p > 0; p--) {
    const namespace = hostileName(r);
    const name = hostileName(r);
    const containers = [];
    for (let c = r.int(0, 3); c > 0; c--) {
      const container = hostileName(r);
      const devices: ContainerDevices[] = [];
      if (r.chance(0.5)) {
        // whole GPUs: these holders must show on the GPU's series with their names intact
        const ids = Array.from({ length: r.int(1, 2) }, () => r.pick(gpus));
        devices.push({ resourceName: 'nvidia.com/gpu', deviceIds: ids });
        for (const uuid of ids) holders.push({ uuid, namespace, pod: name, container });
      }
      for (let d = r.int(0, 3); d > 0; d--) {
        const resourceName = r.pick(RESOURCES);
        const ids: string[] = [];
        for (let k = r.int(0, 4); k > 0; k--) {
          const gpu = r.pick(gpus);
          const id = r.pick([gpu, `${gpu}::${r.int(0, 9)}`, `${gpu}::${r.int(0, 99_999_999)}`, r.pick(migs), `${r.pick(migs)}::${r.int(0, 3)}`, hostileName(r), 'GPU-', `GPU-${'f'.repeat(5000)}`]);
          ids.push(id);
          if (id === gpu && resourceName === 'nvidia.com/gpu') holders.push({ uuid: gpu, namespace, pod: name, container });
        }
        devices.push({ resourceName, deviceIds: ids });
      }
      containers.push({ name: container, devices });
    }
    pods.push({ name, namespace, containers });
  }
  return { podResources: pods };
}

/** Label value as written in the exposition, unescaped. */
function unescapeLabel(v: string): string {
  return v.replace(/\\(\\|n|")/g, (_, c: string) => (c === 'n' ? '\n' : c));
}

/** The (namespace, pod, container) holders each GPU series shows, by UUID. */
function shownHolders(text: string): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('DCGM_FI_DEV_GPU_TEMP{')) continue;
    const labels: Record<string, string> = {};
    for (const m of line.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]!] = unescapeLabel(m[2]!);
    const set = out.get(labels.UUID!) ?? new Set<string>();
    set.add(JSON.stringify([labels.namespace ?? '', labels.pod ?? '', labels.container ?? ''])); // a device nobody holds shows empty ones
    out.set(labels.UUID!, set);
  }
  return out;
}

describe('fuzzing kubelet responses', () => {
  it('random and hostile pod, namespace and container names, device ids and resources: no crash, valid /metrics, labels escaped', { timeout: 120_000 }, async () => {
    // a generous deadline: the fake kubelet shares this test's event loop, which checking a large
    // exposition can hold for a while; a List it answers late would count as the kubelet down
    const s = await startSimulatedExporter('h100x8', ['--kubelet.refresh-interval=500ms', '--kubelet.timeout=15s']);
    running.push(s);
    const devices = simDevices(readFileSync(simulatedNode('h100x8').statePath, 'utf8'));
    const gpus = [...devices.gpus.values()].filter((g) => !g.migMode).map((g) => g.uuid);
    const migs = [...devices.gpus.values()].flatMap((g) => [...g.mig.values()].map((m) => m.uuid));
    const r = new Prng(SEED + 3);

    const refreshed = async (): Promise<string> => {
      const stamp = plainValue(await scrape(s.exp.url), 'kube_gpu_exporter_kubelet_last_success_timestamp_seconds') ?? 0;
      let seen = 0;
      let last = stamp;
      let body = '';
      // two refreshes after the change: the first may have started before it
      await waitFor(async () => {
        body = await scrape(s.exp.url);
        const t = plainValue(body, 'kube_gpu_exporter_kubelet_last_success_timestamp_seconds') ?? 0;
        if (t !== last) {
          seen++;
          last = t;
        }
        return seen >= 2;
      }, 20_000, 'two kubelet refreshes');
      await s.samples(1);
      // a scrape taken while the last refresh answered (a slow one in between keeps the last map but says so)
      return waitFor(async () => {
        const text = await scrape(s.exp.url);
        return plainValue(text, 'kube_gpu_exporter_kubelet_up') === 1 ? text : undefined;
      }, 30_000, 'kubelet answering');
    };

    let checked = 0;
    let hostileChecked = 0;
    for (let round = 0; round < 10; round++) {
      const holders: Holder[] = [];
      const list = randomList(r, gpus, migs, holders);
      const allocatable = { devices: [{ resourceName: 'nvidia.com/gpu.shared', deviceIds: gpus.flatMap((g) => Array.from({ length: r.int(0, 4) }, (_, k) => `${g}::${k}`)) }] };
      s.pods.kubelet.setResponses({ list, allocatable });
      const text = await refreshed();
      const where = `seed ${SEED + 3}, round ${round}`;
      expect(plainValue(text, 'kube_gpu_exporter_kubelet_up'), where).toBe(1);
      expect(await promtoolFindings(text), where).toEqual([]);
      // every container holding a whole GPU shows on that GPU's series, its names intact after unescaping
      const shown = shownHolders(text);
      for (const h of holders) expect(shown.get(h.uuid), `${where}: ${JSON.stringify(h)}`).toContain(JSON.stringify([h.namespace, h.pod, h.container]));
      checked += holders.length;
      hostileChecked += holders.filter((h) => /["\\\n]/.test(h.namespace + h.pod + h.container)).length;
    }
    expect(checked).toBeGreaterThan(30);
    expect(hostileChecked).toBeGreaterThan(10);

    // one container with 50,000 device ids, most of them unknown to this node
    const many = Array.from({ length: 50_000 }, (_, i) => (i % 1000 === 0 ? `${gpus[0]}::${i}` : `GPU-${i.toString(16).padStart(8, '0')}-0000-0000-0000-000000000000`));
    s.pods.kubelet.setResponses({ list: { podResources: [{ name: 'wide', namespace: 'many', containers: [{ name: 'c', devices: [{ resourceName: 'nvidia.com/gpu.shared', deviceIds: many }] }] }] }, allocatable: { devices: [] } });
    let text = await refreshed();
    expect(await promtoolFindings(text)).toEqual([]);
    expect(plainValue(text, 'kube_gpu_exporter_kubelet_unknown_device_ids')).toBe(49_950);
    expect(seriesOf(text, 'DCGM_FI_DEV_GPU_TEMP').filter((x) => x.labels.pod === 'wide')).toHaveLength(50);

    // a response over the client's 16 MB limit is refused; the last good map stays
    const huge = Array.from({ length: 200_000 }, (_, i) => `GPU-${i.toString(16).padStart(100, '0')}::${i}`); // about 22 MB
    s.pods.kubelet.setResponses({ list: { podResources: [{ name: 'huge', namespace: 'many', containers: [{ name: 'c', devices: [{ resourceName: 'nvidia.com/gpu', deviceIds: huge }] }] }] }, allocatable: { devices: [] } });
    text = await waitFor(async () => {
      const t = await scrape(s.exp.url);
      return plainValue(t, 'kube_gpu_exporter_kubelet_up') === 0 ? t : undefined;
    }, 30_000, 'the oversized response refused');
    expect(await promtoolFindings(text)).toEqual([]);
    expect(seriesOf(text, 'DCGM_FI_DEV_GPU_TEMP').filter((x) => x.labels.pod === 'wide')).toHaveLength(50);
    expect(countLogs(s.exp, 'sampling worker')).toBe(0);
    expect(await s.stop()).toBe(0);
  });
});
