/**
 * Writes the alert and recording rules from rules.template.yaml and settings.yaml:
 *   deploy/rules/kube-gpu-exporter.rules.yaml  (promtool, a plain Prometheus `rule_files`)
 *   deploy/base/prometheusrule.yaml            (the same groups as a PrometheusRule)
 *
 *   npx tsx deploy/rules/build.ts
 *
 * (test/rules.test.ts fails while either file differs from what this writes)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parse, parseDocument } from 'yaml';

export const RULES_DIR = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(RULES_DIR, '../..');
export const SETTINGS_FILE = path.join(RULES_DIR, 'settings.yaml');
export const TEMPLATE_FILE = path.join(RULES_DIR, 'rules.template.yaml');
export const RULES_FILE = path.join(RULES_DIR, 'kube-gpu-exporter.rules.yaml');
export const PROMETHEUS_RULE_FILE = path.join(ROOT, 'deploy/base/prometheusrule.yaml');

export type Settings = Record<string, string | number>;

const rel = (file: string): string => path.relative(ROOT, file);

const DURATION = /^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$/;
const DURATION_UNITS_S = [365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001];

/** Seconds in a Prometheus duration (1h30m, 5m, 1d), or undefined if it is not one. */
export function durationSeconds(text: string): number | undefined {
  const m = DURATION.exec(text);
  if (!text || !m) return undefined;
  return m.slice(1).reduce((sum, n, i) => sum + (n ? Number(n) * DURATION_UNITS_S[i]! : 0), 0);
}

/** What a setting's name says its value must be. */
const KINDS: { suffix: string; what: string; ok: (v: unknown) => boolean }[] = [
  { suffix: '_window', what: 'a Prometheus duration (e.g. 30s, 5m, 1h, 1d)', ok: (v) => typeof v === 'string' && (durationSeconds(v) ?? 0) > 0 },
  { suffix: '_for', what: 'a Prometheus duration (e.g. 30s, 5m, 1h, 1d)', ok: (v) => typeof v === 'string' && (durationSeconds(v) ?? 0) > 0 },
  { suffix: '_step', what: 'a Prometheus duration (e.g. 30s, 5m, 1h, 1d)', ok: (v) => typeof v === 'string' && (durationSeconds(v) ?? 0) > 0 },
  { suffix: '_ratio', what: 'a number from 0 to 1', ok: (v) => typeof v === 'number' && v >= 0 && v <= 1 },
  { suffix: '_celsius', what: 'a number of degrees Celsius', ok: (v) => typeof v === 'number' && Number.isFinite(v) },
  { suffix: '_job', what: 'a job label value', ok: (v) => typeof v === 'string' && /^[^"\\\n]+$/.test(v) },
  { suffix: '_age', what: 'a Prometheus duration (e.g. 30s, 5m, 1h, 1d)', ok: (v) => typeof v === 'string' && (durationSeconds(v) ?? 0) > 0 },
  { suffix: '_intervals', what: 'a number of sample intervals greater than 0', ok: (v) => typeof v === 'number' && Number.isFinite(v) && v > 0 },
];

/** Checks every value against the kind its name says (one message naming each bad value). */
export function validateSettings(raw: unknown, where: string): Settings {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${where}: expected a mapping of setting names to values`);
  const problems: string[] = [];
  for (const [name, value] of Object.entries(raw)) {
    const kind = KINDS.find((k) => name.endsWith(k.suffix));
    if (!kind) problems.push(`${name}: the name must end in one of ${KINDS.map((k) => k.suffix).join(', ')} (it says what the value is)`);
    else if (!kind.ok(value)) problems.push(`${name}: ${JSON.stringify(value)} is not ${kind.what}`);
  }
  if (problems.length) throw new Error(`${where}: ${problems.join('; ')}`);
  return raw as Settings;
}

export function readSettings(file = SETTINGS_FILE): Settings {
  return validateSettings(parse(readFileSync(file, 'utf8')), rel(file));
}

/** The values ${name} may stand for: every setting, and each duration also as ${name_seconds}. */
function placeholderValues(settings: Settings): Map<string, string> {
  const values = new Map<string, string>();
  for (const [name, value] of Object.entries(settings)) {
    values.set(name, String(value));
    const seconds = typeof value === 'string' ? durationSeconds(value) : undefined;
    if (seconds !== undefined) values.set(`${name}_seconds`, String(seconds));
  }
  return values;
}

/** Fills every ${name}; an unknown name, or a setting the template never uses, is an error. */
export function fillTemplate(template: string, settings: Settings, where: string): string {
  const values = placeholderValues(settings);
  const unknown = new Set<string>();
  const used = new Set<string>();
  const out = template.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (whole, name: string) => {
    const v = values.get(name);
    if (v === undefined) {
      unknown.add(name);
      return whole;
    }
    used.add(name.replace(/_seconds$/, '')).add(name);
    return v;
  });
  if (unknown.size) throw new Error(`${where}: no setting named ${[...unknown].join(', ')} in ${rel(SETTINGS_FILE)}`);
  const unused = Object.keys(settings).filter((n) => !used.has(n));
  if (unused.length) throw new Error(`${rel(SETTINGS_FILE)}: ${unused.join(', ')} used nowhere in ${where}`);
  return out;
}

const RULES_HEADER = `# Generated by deploy/rules/build.ts from deploy/rules/rules.template.yaml and
# deploy/rules/settings.yaml: edit those and run \`npx tsx deploy/rules/build.ts\` (it also writes
# deploy/base/prometheusrule.yaml; test/rules.test.ts fails while either is out of date).
`;

const PROMETHEUS_RULE_HEADER = `# Generated by deploy/rules/build.ts (the groups of deploy/rules/kube-gpu-exporter.rules.yaml):
# change the rules in deploy/rules/, not here. Needs the Prometheus Operator CRDs. Your
# Prometheus selects PrometheusRules by label (kube-prometheus-stack: release: <its Helm
# release name>, unless ruleSelectorNilUsesHelmValues is false): add that label with a patch
# in your overlay.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: kube-gpu-exporter
  namespace: gpu-monitoring
  labels:
    app.kubernetes.io/name: kube-gpu-exporter
    app.kubernetes.io/component: exporter
spec:
`;

/** The rule groups: the template without its first paragraph (about the template), filled in. */
export function renderRuleGroups(settings: Settings, template = readFileSync(TEMPLATE_FILE, 'utf8')): string {
  const lines = template.split('\n');
  const end = lines.findIndex((l) => l === '#');
  if (end < 0 || !lines.slice(0, end).every((l) => l.startsWith('#'))) {
    throw new Error(`${rel(TEMPLATE_FILE)}: expected a first comment paragraph about the template, ended by a line "#"`);
  }
  const body = fillTemplate(lines.slice(end + 1).join('\n'), settings, rel(TEMPLATE_FILE));
  const doc = parseDocument(body);
  if (doc.errors.length) throw new Error(`${rel(TEMPLATE_FILE)} (filled in): ${doc.errors.map((e) => e.message).join('; ')}`);
  return body;
}

/** Both files' contents, from the settings file with optional overrides (e.g. short windows). */
export function buildRules(overrides: Settings = {}): { rules: string; prometheusRule: string } {
  const base = readSettings();
  const unknown = Object.keys(overrides).filter((k) => !(k in base));
  if (unknown.length) throw new Error(`overrides: no setting named ${unknown.join(', ')} in ${rel(SETTINGS_FILE)}`);
  const groups = renderRuleGroups(validateSettings({ ...base, ...overrides }, 'overrides'));
  // The PrometheusRule holds the same text (comments included) under spec.
  const underSpec = groups.split('\n').map((l) => (l === '' ? l : `  ${l}`)).join('\n');
  return { rules: RULES_HEADER + groups, prometheusRule: PROMETHEUS_RULE_HEADER + underSpec };
}

function main(): void {
  const { rules, prometheusRule } = buildRules();
  for (const [file, text] of [
    [RULES_FILE, rules],
    [PROMETHEUS_RULE_FILE, prometheusRule],
  ] as const) {
    writeFileSync(file, text);
    process.stdout.write(`wrote ${rel(file)}\n`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  try {
    main();
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}
