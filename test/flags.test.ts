import { COLLECTORS } from '../src/collectors/index.js';
import { describe, expect, it } from 'vitest';
import { helpText, parseDuration, parseFlags, parseListenAddress } from '../src/config/flags.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { ERROR_CODES, ExporterError } from '../src/errors.js';
import { loadWebConfig } from '../src/config/web-config.js';
import { WebConfigWatcher } from '../src/config/web-config-watcher.js';
import { makeTestPki } from './support/certs.js';
import { errorOf } from './support/errors.js';

function config(argv: string[], env: Record<string, string> = {}) {
  const r = parseFlags(argv, env);
  if (r.kind !== 'run') throw new Error('expected run');
  return r.config;
}


describe('flags', () => {
  it('has documented defaults', () => {
    const c = config([]);
    expect(c.listenPort).toBe(9400);
    expect(c.listenHost).toBe('');
    expect(c.sampleIntervalMs).toBe(1000);
    expect(c.healthIntervalMs).toBe(30_000);
    expect(c.naming).toBe('dcgm');
    expect(c.collectors.utilization).toBe(true);
    expect(c.kubeletSocket).toBe('/var/lib/kubelet/pod-resources/kubelet.sock');
    expect(c.kubeletRefreshMs).toBe(5000);
    expect(c.podMetadata).toBe(false);
    expect(c.procfsPath).toBe('/proc');
  });

  it('turns pod attribution off with --kubelet.socket=none and anchors the pod label allowlist', () => {
    expect(config(['--kubelet.socket=none']).kubeletSocket).toBe('');
    const re = config(['--kubernetes.pod-metadata', 'true', '--kubernetes.pod-labels=team|app\\.kubernetes\\.io/name']).podLabelAllowlist!;
    expect(['team', 'app.kubernetes.io/name'].map((k) => re.test(k))).toEqual([true, true]);
    expect(['teams', 'my-team', 'appXkubernetes.io/name'].map((k) => re.test(k))).toEqual([false, false, false]);
    expect(config([], { KGE_PATH_PROCFS: '/host/proc/' }).procfsPath).toBe('/host/proc');
  });

  it('reads flags in both forms, env twins, and lets flags win', () => {
    const c = config(['--sample-interval=250ms', '--naming', 'prometheus', '--no-collector.pcie'], {
      KGE_SAMPLE_INTERVAL: '5s',
      KGE_LOG_LEVEL: 'debug',
      NODE_NAME: 'gpu-node-7',
      KGE_COLLECTOR_FAN: 'false',
    });
    expect(c.sampleIntervalMs).toBe(250);
    expect(c.naming).toBe('prometheus');
    expect(c.logLevel).toBe('debug');
    expect(c.nodeName).toBe('gpu-node-7');
    expect(c.collectors.pcie).toBe(false);
    expect(c.collectors.fan).toBe(false);
  });

  it('reads the slow health interval from --health.interval or KGE_HEALTH_INTERVAL, and turns the health collectors on by default', () => {
    expect(config(['--health.interval=2m']).healthIntervalMs).toBe(120_000);
    expect(config([], { KGE_HEALTH_INTERVAL: '10s' }).healthIntervalMs).toBe(10_000);
    expect(config(['--health.interval', '5s'], { KGE_HEALTH_INTERVAL: '10s' }).healthIntervalMs).toBe(5000);
    // shorter than the sample interval is accepted: the sampler then reads every sample
    expect(config(['--health.interval=500ms', '--sample-interval=2s']).healthIntervalMs).toBe(500);
    const c = config([]).collectors;
    expect([c.ecc, c.memory_errors, c.pcie_errors, c.nvlink, c.throttle, c.violation]).toEqual([true, true, true, true, true, true]);
    expect(config(['--no-collector.memory_errors']).collectors.memory_errors).toBe(false);
    expect(config([], { KGE_COLLECTOR_NVLINK: 'false' }).collectors.nvlink).toBe(false);
  });

  it('parses listen addresses', () => {
    expect(parseListenAddress(':9400')).toEqual({ host: '', port: 9400 });
    expect(parseListenAddress('127.0.0.1:0')).toEqual({ host: '127.0.0.1', port: 0 });
    expect(parseListenAddress('[::1]:9400')).toEqual({ host: '::1', port: 9400 });
    expect(parseListenAddress('9400')).toBeUndefined();
    expect(parseListenAddress(':70000')).toBeUndefined();
    expect(parseDuration('1.5s', 100, 10_000)).toBe(1500);
    expect(parseDuration('50ms', 100, 10_000)).toBeUndefined();
  });

  it.each([
    [['--bogus'], 'KGE_FLAG_UNKNOWN', '--bogus'],
    [['--collector.nonexistent'], 'KGE_FLAG_UNKNOWN', '--collector.nonexistent'],
    [['--sample-interval'], 'KGE_FLAG_MISSING_VALUE', '--sample-interval'],
    [['--sample-interval=5x'], 'KGE_FLAG_INVALID', 'a duration from 100ms'],
    [['--naming=dgcm'], 'KGE_FLAG_INVALID', 'dcgm or prometheus'],
    [['--web.listen-address', 'localhost'], 'KGE_FLAG_INVALID', '--web.listen-address'],
    [['stray'], 'KGE_FLAG_UNEXPECTED_ARGUMENT', 'stray'],
    [['--collector.fan=yes'], 'KGE_FLAG_INVALID', '--no-collector.fan'],
    [['--kubelet.socket=relative/kubelet.sock'], 'KGE_FLAG_INVALID', 'an absolute path, or none'],
    [['--kubelet.refresh-interval=100ms'], 'KGE_FLAG_INVALID', 'from 500ms to 10m'],
    [['--health.interval=2h'], 'KGE_FLAG_INVALID', 'a duration from 100ms to 1h'],
    [['--health.interval=50ms'], 'KGE_FLAG_INVALID', '--health.interval'],
    [['--kubernetes.pod-metadata=maybe'], 'KGE_FLAG_INVALID', 'true or false'],
    [['--kubernetes.pod-metadata=true', '--kubernetes.pod-labels=team('], 'KGE_FLAG_INVALID', 'a regular expression'],
    [['--kubernetes.pod-labels=team'], 'KGE_FLAG_REQUIRES', '--kubernetes.pod-metadata=true'],
    [['--web.max-requests=-1'], 'KGE_FLAG_INVALID', 'a whole number from 0 to 10000'],
    [['--web.max-requests=2.5'], 'KGE_FLAG_INVALID', 'a whole number'],
    [['--web.read-header-timeout=50ms'], 'KGE_FLAG_INVALID', 'a duration from 100ms to 5m'],
    [['--web.request-timeout=0s'], 'KGE_FLAG_INVALID', 'a duration from 1s to 10m'],
    [['--shutdown-timeout=forever'], 'KGE_FLAG_INVALID', '--shutdown-timeout'],
    [['--web.read-header-timeout=1m', '--web.request-timeout=30s'], 'KGE_FLAG_CONFLICT', '--web.read-header-timeout must not be longer than --web.request-timeout'],
  ])('rejects %j with %s', (argv, code, mentions) => {
    const err = errorOf(() => parseFlags(argv, {}));
    expect(err.code).toBe(code);
    expect(err.message).toContain(mentions);
  });

  it('names the environment variable when an env value is bad', () => {
    const err = errorOf(() => parseFlags([], { KGE_LOG_LEVEL: 'loud' }));
    expect(err.code).toBe('KGE_ENV_INVALID');
    expect(err.message).toContain('KGE_LOG_LEVEL');
    expect(err.message).toContain('--log.level');
    const bool = errorOf(() => parseFlags([], { KGE_COLLECTOR_FAN: 'maybe' }));
    expect(bool.message).toContain('KGE_COLLECTOR_FAN');
  });

  it('every error code in the table is produced by some input', () => {
    const produced = new Set<string>();
    const inputs: [string[], Record<string, string>][] = [
      [['--bogus'], {}],
      [['--sample-interval'], {}],
      [['--sample-interval=x'], {}],
      [[], { KGE_NAMING: 'x' }],
      [['stray'], {}],
      [['--kubernetes.pod-labels=team'], {}],
      [['--web.read-header-timeout=1m', '--web.request-timeout=30s'], {}],
      [['--dcgm.counters=/nonexistent/counters.csv'], {}],
      [['--metrics.max-labels=10'], {}],
      [['--no-collector.mig'], {}],
    ];
    for (const [argv, env] of inputs) produced.add(errorOf(() => parseFlags(argv, env)).code);
    // the web config file's codes
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kge-codes-'));
    const web = path.join(dir, 'web.yml');
    writeFileSync(web, 'tls_server_config:\n  bogus: 1\n');
    produced.add(errorOf(() => loadWebConfig(web)).code);
    writeFileSync(web, '');
    const watcher = new WebConfigWatcher(web, pino({ level: 'silent' }));
    const pki = makeTestPki();
    writeFileSync(web, `tls_server_config:\n  cert_file: ${pki.server.certFile}\n  key_file: ${pki.server.keyFile}\n`);
    expect(watcher.check()).toBe(false);
    produced.add((watcher.rejected as ExporterError).code);
    expect([...produced].sort()).toEqual(Object.keys(ERROR_CODES).sort());
  });

  it('refuses to turn a collector off while collectors that read its output stay on, and runs each after what it needs', () => {
    const err = errorOf(() => parseFlags(['--no-collector.mig'], {}));
    expect(err.code).toBe('KGE_COLLECTOR_NEEDED');
    expect(err.message).toBe(
      '--no-collector.mig: mig_profiles and gpm and processes read what it collects (the MIG mode and MIG instances of each GPU); turn them off too (--no-collector.mig_profiles --no-collector.gpm --no-collector.processes) or keep mig on',
    );
    expect(errorOf(() => parseFlags(['--no-collector.mig', '--no-collector.gpm', '--no-collector.mig_profiles'], {})).message).toContain('processes reads what it collects');
    expect(errorOf(() => parseFlags([], { KGE_COLLECTOR_MIG: 'false', KGE_COLLECTOR_GPM: 'false' })).code).toBe('KGE_COLLECTOR_NEEDED');
    const ok = parseFlags(['--no-collector.mig', '--no-collector.gpm', '--no-collector.processes', '--no-collector.mig_profiles'], {});
    expect(ok.kind === 'run' && ok.config.collectors.mig).toBe(false);
    // a tick runs the collectors in list order: what one needs comes before it
    COLLECTORS.forEach((c, i) => {
      for (const need of c.needs ?? []) expect(COLLECTORS.findIndex((d) => d.name === need), `${c.name} needs ${need}`).toBeLessThan(i);
    });
  });

  it('--help lists every flag and collector', () => {
    expect(parseFlags(['--help'], {}).kind).toBe('help');
    const help = helpText();
    for (const f of ['--web.listen-address', '--nvml.library', '--sample-interval', '--health.interval', 'KGE_HEALTH_INTERVAL', '--naming', '--log.level', 'KGE_NVML_LIBRARY', 'utilization', 'mig', 'memory_errors', 'nvlink']) {
      expect(help).toContain(f);
    }
  });
});
