/**
 * The comparison: a parsed run (exporter scrapes and the independent readings taken beside
 * them, per phase) in, table rows out. Pure: no I/O, no clock; the same run gives the same rows.
 * The rules live in compare/, one area per module; this is their list.
 *
 * Every family the exporter declares (src/metrics/families.ts) gets rows from one of the rules,
 * or an explicit `skip` row saying why nothing independent can be compared; a family in a
 * scrape that no rule knows gets a `skip` row too ("no rule"), so nothing is silently left out.
 */
import { declaredFamilyNames, isRuntimeFamily } from './names.js';
import { PHASES, type RunData } from './run-data.js';
import { devicesOf, skipRow, targetOf, type Ctx, type Row, type Rule } from './compare/core.js';
import { csvLevelRules, identityRule, migMemoryRule, pcieRule, throttleRule } from './compare/gpu-values.js';
import { busyRule, gpmRule, utilizationRule } from './compare/activity.js';
import { nvlinkRule, pynvmlCounterRule, xmlHealthRule } from './compare/counters.js';
import { processRule } from './compare/processes.js';
import { eventsRule, exporterRule, loadSkippedRows, referenceErrorRows, runtimeRow, skippedRule } from './compare/exporter.js';

export { devicesOf, targetOf, TOL, type Device, type Row, type Verdict } from './compare/core.js';

export const RULES: readonly Rule[] = [
  identityRule,
  ...csvLevelRules,
  migMemoryRule,
  utilizationRule,
  busyRule,
  gpmRule,
  pcieRule,
  throttleRule,
  pynvmlCounterRule,
  xmlHealthRule,
  nvlinkRule,
  processRule,
  eventsRule,
  exporterRule,
  skippedRule,
];

/** Family names some rule covers. */
export function coveredFamilies(): Set<string> {
  return new Set(RULES.flatMap((r) => r.families));
}

/** Families declared in families.ts that no rule covers (the coverage test wants none). */
export function uncoveredDeclaredFamilies(): string[] {
  const covered = coveredFamilies();
  return declaredFamilyNames().filter((n) => !covered.has(n));
}

export function compareRun(run: RunData): Row[] {
  const devices = devicesOf(run);
  const phases = PHASES.map((phase) => ({ phase, snaps: run.snapshots.filter((s) => s.phase === phase) })).filter((p) => p.snaps.length > 0);
  const ctx: Ctx = {
    run,
    devices,
    gpus: devices.filter((d) => d.kind === 'gpu'),
    migs: devices.filter((d) => d.kind === 'mig'),
    target: targetOf(run, devices),
    phases,
    idle: run.snapshots.filter((s) => s.phase === 'idle'),
  };
  const rows: Row[] = [...referenceErrorRows(ctx), ...loadSkippedRows(ctx)];
  for (const rule of RULES) rows.push(...rule.rows(ctx));
  rows.push(runtimeRow(ctx));
  // families in the scrapes that no rule knows: shown, never silently left out
  const covered = coveredFamilies();
  const unknown = new Set<string>();
  for (const s of run.snapshots) for (const name of s.scrape.keys()) if (!covered.has(name) && !isRuntimeFamily(name)) unknown.add(name);
  for (const name of unknown) rows.push({ ...skipRow(name, 'gpu-check has no rule for this family yet'), note: 'no rule for this family in scripts/gpu-check/compare/' });
  return rows;
}

export function exitCode(rows: readonly Row[]): 0 | 1 {
  return rows.some((r) => r.verdict === 'fail') ? 1 : 0;
}
