/**
 * Alert and recording rules (deploy/rules/): the generated files are up to date and hold the
 * same groups, promtool accepts them, every promtool test case passes, every alert has a
 * firing and a not-firing case and every recording rule a checked value, the cases notice a
 * changed threshold, bad settings get a message naming them, and the docs list every setting
 * and alert.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  buildRules,
  durationSeconds,
  fillTemplate,
  PROMETHEUS_RULE_FILE,
  readSettings,
  RULES_DIR,
  RULES_FILE,
  validateSettings,
} from '../deploy/rules/build.js';
import { ROOT } from './support/exporter-process.js';

type Rule = { alert?: string; record?: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
type Group = { name: string; rules: Rule[] };

const TESTS_DIR = path.join(RULES_DIR, 'tests');
const TEST_FILES = readdirSync(TESTS_DIR).filter((f) => f.endsWith('.test.yaml')).sort();
const groups = (parse(readFileSync(RULES_FILE, 'utf8')) as { groups: Group[] }).groups;
const rules = groups.flatMap((g) => g.rules);
const alerts = rules.filter((r) => r.alert).map((r) => r.alert!);
const records = rules.filter((r) => r.record).map((r) => r.record!);

function promtool(args: string[], cwd = ROOT): { status: number | null; out: string } {
  const r = spawnSync('promtool', args, { cwd, encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

const tmpDirs: string[] = [];
afterAll(() => {
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
});

describe('generated rule files', () => {
  it('deploy/rules/kube-gpu-exporter.rules.yaml and deploy/base/prometheusrule.yaml are what build.ts writes from the template and settings', () => {
    const built = buildRules();
    expect(readFileSync(RULES_FILE, 'utf8'), 'run: npx tsx deploy/rules/build.ts').toBe(built.rules);
    expect(readFileSync(PROMETHEUS_RULE_FILE, 'utf8'), 'run: npx tsx deploy/rules/build.ts').toBe(built.prometheusRule);
  });

  it('the PrometheusRule holds exactly the groups of the plain rules file', () => {
    const pr = parse(readFileSync(PROMETHEUS_RULE_FILE, 'utf8')) as { apiVersion: string; kind: string; metadata: { name: string; namespace: string }; spec: { groups: Group[] } };
    expect(`${pr.apiVersion} ${pr.kind}`).toBe('monitoring.coreos.com/v1 PrometheusRule');
    expect(pr.metadata).toMatchObject({ name: 'kube-gpu-exporter', namespace: 'gpu-monitoring' });
    expect(pr.spec.groups).toEqual(groups);
  });

  it('promtool check rules accepts the rules file and counts every rule', () => {
    const r = promtool(['check', 'rules', RULES_FILE]);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it('no placeholder is left and every rule has a severity and a summary and description (alerts)', () => {
    expect(readFileSync(RULES_FILE, 'utf8')).not.toMatch(/\$\{/);
    for (const r of rules.filter((x) => x.alert)) {
      expect(['critical', 'warning', 'info'], r.alert).toContain(r.labels?.severity);
      expect(Object.keys(r.annotations ?? {}).sort(), r.alert).toEqual(['description', 'summary']);
    }
  });
});

// promtool evaluates the right-sizing cases over 8 days at a 5-minute step (about 20 s here)
describe('promtool test rules (deploy/rules/tests/)', () => {
  it('every case passes', () => {
    const r = promtool(['test', 'rules', ...TEST_FILES], TESTS_DIR);
    expect(r.status, r.out).toBe(0);
    expect(r.out.match(/SUCCESS/g)).toHaveLength(TEST_FILES.length);
  }, 120_000);

  type AlertCase = { alertname: string; exp_alerts?: unknown[] };
  type TestFile = { rule_files: string[]; tests: { alert_rule_test?: AlertCase[]; promql_expr_test?: { expr: string; exp_samples?: unknown[] }[] }[] };
  const testFiles = TEST_FILES.map((f) => parse(readFileSync(path.join(TESTS_DIR, f), 'utf8')) as TestFile);

  it('every alert has a case where it fires and one where it does not', () => {
    const cases = testFiles.flatMap((t) => t.tests.flatMap((c) => c.alert_rule_test ?? []));
    const firing = new Set(cases.filter((c) => (c.exp_alerts ?? []).length > 0).map((c) => c.alertname));
    const quiet = new Set(cases.filter((c) => (c.exp_alerts ?? []).length === 0).map((c) => c.alertname));
    expect(alerts.filter((a) => !firing.has(a)), 'alerts never shown firing').toEqual([]);
    expect(alerts.filter((a) => !quiet.has(a)), 'alerts never shown quiet').toEqual([]);
    expect([...firing, ...quiet].filter((a) => !alerts.includes(a)), 'cases for alerts that do not exist').toEqual([]);
  });

  it('every recording rule has its values checked', () => {
    const exprs = testFiles.flatMap((t) => t.tests.flatMap((c) => (c.promql_expr_test ?? []).filter((e) => (e.exp_samples ?? []).length > 0).map((e) => e.expr)));
    expect(records.filter((name) => !exprs.some((e) => e.split(/[{\s]/)[0] === name))).toEqual([]);
  });

  it('every test file loads the rules file', () => {
    for (const t of testFiles) expect(t.rule_files).toEqual(['../kube-gpu-exporter.rules.yaml']);
  });

  it('the cases notice a changed threshold or window (they are not blind to the values)', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kge-rules-'));
    tmpDirs.push(dir);
    mkdirSync(path.join(dir, 'tests'));
    for (const f of TEST_FILES) copyFileSync(path.join(TESTS_DIR, f), path.join(dir, 'tests', f));
    const changed = { temperature_celsius: 95, idle_utilization_ratio: 0.01, gpu_missing_for: '10m', kubelet_failing_for: '10m', rightsizing_headroom_ratio: 0.5, rightsizing_timeshare_share_ratio: 0.1 };
    // and GPU-hours without the 1ms offset (an hour would count one step twice at aligned times)
    const mutated = buildRules(changed).rules.replaceAll(' offset 1ms', '');
    expect(mutated).not.toBe(buildRules(changed).rules);
    writeFileSync(path.join(dir, 'kube-gpu-exporter.rules.yaml'), mutated);
    const r = promtool(['test', 'rules', ...TEST_FILES], path.join(dir, 'tests'));
    expect(r.status).not.toBe(0);
    for (const name of ['GpuTemperatureHigh', 'GpuAllocatedIdle', 'GpuMissing', 'KubeGpuExporterKubeletMappingFailing']) expect(r.out).toContain(`alertname: ${name}`);
    expect(r.out).toContain('gpu_allocated_hours:1h');
    for (const name of ['container_gpu:mig_profile_recommended:window', 'container_gpu:timeshare_fit:window', 'container_gpu:held_hours:window']) expect(r.out).toContain(name);
  }, 120_000);
});

describe('settings', () => {
  it('durations are read as Prometheus reads them', () => {
    expect(durationSeconds('1h')).toBe(3600);
    expect(durationSeconds('1h30m')).toBe(5400);
    expect(durationSeconds('1d')).toBe(86400);
    expect(durationSeconds('500ms')).toBe(0.5);
    expect(durationSeconds('1 hour')).toBeUndefined();
    expect(durationSeconds('')).toBeUndefined();
    expect(durationSeconds('90')).toBeUndefined();
  });

  it('a bad value gets one message naming the setting and what it must be', () => {
    expect(() => validateSettings({ idle_window: '1 hour' }, 'settings.yaml')).toThrow('settings.yaml: idle_window: "1 hour" is not a Prometheus duration (e.g. 30s, 5m, 1h, 1d)');
    expect(() => validateSettings({ idle_utilization_ratio: 5 }, 'settings.yaml')).toThrow('idle_utilization_ratio: 5 is not a number from 0 to 1');
    expect(() => validateSettings({ temperature_celsius: '85C' }, 'settings.yaml')).toThrow('temperature_celsius: "85C" is not a number of degrees Celsius');
    expect(() => validateSettings({ idle_threshold: 0.05 }, 'settings.yaml')).toThrow('idle_threshold: the name must end in one of _window, _for, _step, _ratio, _celsius, _job');
    expect(() => validateSettings(['x'], 'settings.yaml')).toThrow('settings.yaml: expected a mapping of setting names to values');
  });

  it('a placeholder without a setting, and a setting no rule uses, are errors', () => {
    expect(() => fillTemplate('expr: x > ${temperature_celsuis}', { temperature_celsius: 85 }, 'rules.template.yaml')).toThrow(
      'rules.template.yaml: no setting named temperature_celsuis',
    );
    expect(() => fillTemplate('for: ${a_for}', { a_for: '5m', b_for: '1m' }, 'rules.template.yaml')).toThrow('b_for used nowhere in rules.template.yaml');
    expect(fillTemplate('[1h:${s_step}] * ${s_step_seconds}', { s_step: '1m' }, 't')).toBe('[1h:1m] * 60');
  });

  it('overrides must name existing settings', () => {
    expect(() => buildRules({ idle_windw: '5m' })).toThrow('overrides: no setting named idle_windw');
  });

  it('docs/alerts-and-dashboards.md lists every setting with its value, every alert and every recording rule', () => {
    const doc = readFileSync(path.join(ROOT, 'docs/alerts-and-dashboards.md'), 'utf8');
    for (const [name, value] of Object.entries(readSettings())) expect(doc, name).toContain(`| \`${name}\` | \`${value}\` |`);
    for (const name of [...alerts, ...records]) expect(doc, name).toContain(`\`${name}\``);
  });
});
