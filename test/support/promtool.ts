import { execFileSync } from 'node:child_process';
import type { NamingScheme } from '../../src/metrics/families.js';

/**
 * dcgm-exporter's camelCase labels (modelName, UUID, ...) and its counter names without
 * _total are the point of the dcgm scheme: the lint findings about them are expected there.
 */
const DCGM_SCHEME_FINDINGS = [/ label names should be written in 'snake_case' not 'camelCase'$/, /^DCGM_FI_\w+ counter metrics should have "_total" suffix$/, /^DCGM_FI_\w+ metric name should not include type 'counter'$/];

/**
 * What `promtool check metrics` says about an exposition: parse errors and lint findings, one
 * a line, except the findings the naming scheme intends. An empty list: the text is valid.
 */
export function promtoolFindings(text: string | Buffer, scheme: NamingScheme = 'dcgm'): string[] {
  let out: string;
  try {
    out = execFileSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    out = `${e.stdout ?? ''}${e.stderr ?? ''}`;
  }
  return out
    .split('\n')
    .filter((l) => l.trim())
    .filter((l) => !(scheme === 'dcgm' && DCGM_SCHEME_FINDINGS.some((re) => re.test(l))));
}
