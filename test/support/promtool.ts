import { execFile } from 'node:child_process';
import type { NamingScheme } from '../../src/metrics/families.js';

/**
 * dcgm-exporter's camelCase labels (modelName, UUID, ...) and its counter names without
 * _total are the point of the dcgm scheme: the lint findings about them are expected there.
 */
const DCGM_SCHEME_FINDINGS = [/ label names should be written in 'snake_case' not 'camelCase'$/, /^DCGM_FI_\w+ counter metrics should have "_total" suffix$/, /^DCGM_FI_\w+ metric name should not include type 'counter'$/];

/**
 * What `promtool check metrics` says about an exposition: parse errors and lint findings, one
 * a line, except the findings the naming scheme intends. An empty list: the text is valid.
 * Asynchronous, so that the test's own servers (fake kubelet, fake API server) and its HTTP
 * connections keep being served while promtool reads a large exposition.
 */
export async function promtoolFindings(text: string | Buffer, scheme: NamingScheme = 'dcgm'): Promise<string[]> {
  const out = await new Promise<string>((resolve, reject) => {
    const child = execFile('promtool', ['check', 'metrics'], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      // promtool exits 1 when it has findings: those are the answer, not a failure to run it
      if (err && typeof (err as { code?: unknown }).code !== 'number') reject(err);
      else resolve(`${stdout}${stderr}`);
    });
    child.stdin!.end(text);
  });
  return out
    .split('\n')
    .filter((l) => l.trim())
    .filter((l) => !(scheme === 'dcgm' && DCGM_SCHEME_FINDINGS.some((re) => re.test(l))));
}
