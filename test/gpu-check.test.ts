/**
 * `npm run gpu-check` without a GPU: its parsers on recorded reference output, every comparison
 * rule passing and failing just inside and just outside its tolerance, N/A handling, the table,
 * the options, and the exit-3 path run as a child process. The recorded runs are hand-written
 * fixtures (test/fixtures/gpu-check/README.md); nothing here depends on timing.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compareRun, exitCode, RULES, TOL, uncoveredDeclaredFamilies, type Row } from '../scripts/gpu-check/compare.js';
import { exporterArgs } from '../scripts/gpu-check/exporter.js';
import { DEFAULT_PHASE_SECONDS, parseOptions, UsageError } from '../scripts/gpu-check/options.js';
import { declaredFamilyNames, nameOf, POD } from '../scripts/gpu-check/names.js';
import { parseScrape, scalar, seriesOf } from '../scripts/gpu-check/prom.js';
import { pidInfo, podUidFromCgroup } from '../scripts/gpu-check/references.js';
import { parsePynvml, type PyGpu } from '../scripts/gpu-check/pynvml.js';
import { readRecording } from '../scripts/gpu-check/record.js';
import { parseRun, type PhaseName, type RunData, type Snapshot } from '../scripts/gpu-check/run-data.js';
import { dropField, initialChoice, parseAppsCsv, parseGpuCsv, parseList, queryFields, rejectedField, type GpuKey } from '../scripts/gpu-check/smi-csv.js';
import { parseSmiXml } from '../scripts/gpu-check/smi-xml.js';
import { renderTable } from '../scripts/gpu-check/table.js';
import { flag, hexMask, isNA, median, naMarker, numberWithUnit, pstate } from '../scripts/gpu-check/values.js';
import { parseXml, textAt } from '../scripts/gpu-check/xml.js';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const FIX = path.join(ROOT, 'test', 'fixtures', 'gpu-check');
const H200 = 'GPU-6d1c2a9e-3f4b-5e8d-9a7c-1b2d3e4f5a6b';
const MIB = 1048576;

const fixtureText = (dir: string, file: string): string => readFileSync(path.join(FIX, dir, file), 'utf8');
const load = (dir: string): RunData => parseRun(readRecording(path.join(FIX, dir)));

function rows(run: RunData): Row[] {
  return compareRun(run);
}

/** The one row of a family (and phase, gpu, and a note or tolerance that contains `has`). */
function row(all: Row[], family: string, phase?: PhaseName | '-', gpu = '0', has?: string): Row {
  const found = all.filter(
    (r) => r.family === family && (phase === undefined || r.phase === phase) && r.gpu === gpu && (has === undefined || `${r.tolerance} ${r.note ?? ''}`.includes(has)),
  );
  if (found.length !== 1) throw new Error(`${found.length} rows for ${family} ${phase ?? ''} ${gpu} ${has ?? ''}:\n${found.map((r) => JSON.stringify(r)).join('\n')}`);
  return found[0]!;
}

const snapsOf = (run: RunData, phase: PhaseName): Snapshot[] => run.snapshots.filter((s) => s.phase === phase);

function setSmi(run: RunData, phase: PhaseName, key: GpuKey, text: string): void {
  for (const s of snapsOf(run, phase)) for (const r of s.smi ?? []) r[key] = text;
}

/** Sets (or, with undefined, removes) a GPU-level series of the H200's scrapes in a phase. */
function setSeries(run: RunData, phase: PhaseName, family: string, value: number | undefined | ((s: Snapshot, old: number) => number)): void {
  for (const s of snapsOf(run, phase)) {
    const fam = s.scrape.get(family);
    if (!fam) continue;
    if (value === undefined) {
      s.scrape.delete(family);
      continue;
    }
    for (const sr of fam.series) if (sr.labels.GPU_I_ID === undefined) sr.value = typeof value === 'function' ? value(s, sr.value) : value;
  }
}

function py(s: Snapshot): PyGpu {
  if (!s.py?.ok) throw new Error('no pynvml reading');
  return s.py.gpus[0]!;
}

function sampleTs(s: Snapshot): number {
  return scalar(s.scrape, 'kube_gpu_exporter_last_sample_timestamp_seconds')!;
}

// ---------------------------------------------------------------------------------------------

describe('gpu-check parsers', () => {
  it('reads nvidia-smi --query-gpu CSV as printed, [N/A] and [Not Supported] included', () => {
    const raw = readRecording(path.join(FIX, 'h200'));
    const { keys, fields } = raw.meta.smiFields;
    const [gpu] = parseGpuCsv(fixtureText('h200', 'load-00.smi.csv'), fields, keys);
    expect(gpu).toMatchObject({ index: '0', uuid: H200, name: 'NVIDIA H200', busId: '00000000:19:00.0', utilGpu: '100', memTotal: '143771', fan: '[Not Supported]', pstate: 'P0', throttle: '0x0000000000000000', retiredSbe: '[N/A]' });
    expect(numberWithUnit(gpu!.fan)).toEqual({ na: '[Not Supported]' });
    expect(isNA(numberWithUnit(gpu!.retiredPending))).toBe(true);
    // fields named without keys: looked up from the query table
    expect(parseGpuCsv('0, GPU-x\n', ['index', 'uuid'])).toEqual([{ index: '0', uuid: 'GPU-x' }]);
    expect(() => parseGpuCsv('0, GPU-x, 3\n', ['index', 'uuid'])).toThrow(/3 fields, asked for 2/);
    expect(() => parseGpuCsv('0\n', ['index.bogus'])).toThrow(/not one the check reads/);
  });

  it('reads nvidia-smi --query-compute-apps CSV, also when nothing runs', () => {
    expect(parseAppsCsv(fixtureText('h200', 'load-00.apps.csv'))).toEqual([{ pid: 48213, gpuUuid: H200, usedMemory: '1474', processName: 'python3' }]);
    expect(parseAppsCsv('')).toEqual([]);
    expect(parseAppsCsv('No running processes found\n')).toEqual([]);
    expect(parseAppsCsv('7, GPU-a, [N/A], my, odd, name\n')).toEqual([{ pid: 7, gpuUuid: 'GPU-a', usedMemory: '[N/A]', processName: 'my, odd, name' }]);
    expect(() => parseAppsCsv('pid, gpu_uuid\n')).toThrow(/not pid, gpu_uuid/);
  });

  it('reads nvidia-smi -L with MIG devices', () => {
    expect(parseList(fixtureText('h100-mig', 'nvidia-smi-L.txt'))).toEqual([
      {
        index: 0, name: 'NVIDIA H100 PCIe', uuid: 'GPU-9a41f0c2-7d3e-4b58-8c16-e2f5a9b3d074',
        mig: [
          { device: 0, profile: '3g.40gb', uuid: 'MIG-2b7c4e1f-8a3d-5f60-9e21-7c4d8b0a6f13' },
          { device: 1, profile: '2g.20gb', uuid: 'MIG-e5a19c37-40b2-5d8e-a6f1-3b92c7d04e58' },
        ],
      },
    ]);
    expect(parseList('No devices were found\n')).toEqual([]);
  });

  it('reads the nvidia-smi -q -x report of an H200', () => {
    const log = parseSmiXml(fixtureText('h200', 'load-00.smi.xml'));
    expect(log.driverVersion).toBe('580.159.04');
    expect(log.gpus).toHaveLength(1);
    const g = log.gpus[0]!;
    expect(g).toMatchObject({ id: '00000000:19:00.0', productName: 'NVIDIA H200', uuid: H200, minorNumber: '0', migCurrent: 'Disabled', fanSpeed: 'N/A', performanceState: 'P0' });
    expect(g.fb).toEqual({ total: '143771 MiB', reserved: '632 MiB', used: '1475 MiB', free: '141663 MiB' });
    expect(g.pcie).toEqual({ replayCounter: '0', txUtil: '6157 KB/s', rxUtil: '9293 KB/s' });
    expect(g.remappedRows).toEqual({ correctable: '0', uncorrectable: '0', pending: 'No', failure: 'No' });
    expect(g.retiredPages).toEqual({ sbeCount: 'N/A', dbeCount: 'N/A', pending: 'N/A' });
    expect(g.temperature).toEqual({ gpu: '49 C', memory: '56 C' });
    expect(g.power.average).toBe('652.42 W');
    expect(g.power.enforcedLimit).toBe('700.00 W');
    expect(g.maxClocks).toEqual({ graphics: '1980 MHz', sm: '1980 MHz', mem: '3201 MHz' });
    expect(g.clockEventReasons.gpu_idle).toBe('Not Active');
    expect(g.processes).toEqual([{ pid: 48213, gpuInstanceId: 'N/A', computeInstanceId: 'N/A', type: 'C', name: 'python3', usedMemory: '1474 MiB' }]);
    expect(g.mig).toEqual([]);
    expect(numberWithUnit(g.pcie.txUtil)).toBe(6157);
  });

  it('reads MIG devices and their processes from nvidia-smi -q -x', () => {
    const g = parseSmiXml(fixtureText('h100-mig', 'load-00.smi.xml')).gpus[0]!;
    expect(g.migCurrent).toBe('Enabled');
    expect(g.mig.map((m) => [m.index, m.gpuInstanceId, m.computeInstanceId, m.fb.total])).toEqual([['0', '2', '0', '40192 MiB'], ['1', '3', '0', '19968 MiB']]);
    expect(g.processes[0]).toMatchObject({ pid: 51877, gpuInstanceId: '2', computeInstanceId: '0', usedMemory: '1440 MiB' });
    expect(g.remappedRows.correctable).toBe('N/A');
  });

  it('reads the element names of older drivers (power_readings, clocks_throttle_reasons)', () => {
    const xml = `<?xml version="1.0" ?>
<!DOCTYPE nvidia_smi_log SYSTEM "nvsmi_device_v11.dtd">
<nvidia_smi_log>
  <driver_version>470.256.02</driver_version>
  <gpu id="00000000:3B:00.0">
    <product_name>Tesla V100-SXM2-32GB</product_name>
    <uuid>GPU-aaaa</uuid>
    <clocks_throttle_reasons>
      <clocks_throttle_reason_gpu_idle>Active</clocks_throttle_reason_gpu_idle>
    </clocks_throttle_reasons>
    <power_readings>
      <power_draw>42.17 W</power_draw>
      <enforced_power_limit>300.00 W</enforced_power_limit>
    </power_readings>
    <processes></processes>
  </gpu>
</nvidia_smi_log>`;
    const g = parseSmiXml(xml).gpus[0]!;
    expect(g.power).toEqual({ average: undefined, instant: undefined, draw: '42.17 W', enforcedLimit: '300.00 W' });
    expect(g.clockEventReasons).toEqual({ gpu_idle: 'Active' });
    expect(g.mig).toEqual([]);
    expect(() => parseSmiXml('<other/>')).toThrow(/not <nvidia_smi_log>/);
  });

  it('has an XML reader for what nvidia-smi writes, and says where a document is broken', () => {
    const doc = parseXml(`<?xml version="1.0"?>
<!DOCTYPE a [ <!ENTITY x "y"> ]>
<!-- a comment -->
<a k="v &amp; w" j='1'>
  <b>1 &lt; 2 &#65;&#x42;</b>
  <c/>
  <d><![CDATA[<raw>]]></d>
  <e>
    text <f>inner</f>
  </e>
</a>`);
    expect(doc.attrs).toEqual({ k: 'v & w', j: '1' });
    expect(textAt(doc, 'b')).toBe('1 < 2 AB');
    expect(textAt(doc, 'c')).toBe('');
    expect(textAt(doc, 'd')).toBe('<raw>');
    expect(textAt(doc, 'e')).toBe('text');
    expect(textAt(doc, 'e/f')).toBe('inner');
    expect(textAt(doc, 'missing/x')).toBeUndefined();
    expect(() => parseXml('<a><b></a>')).toThrow(/line 1: closing <\/a> does not match <b>/);
    expect(() => parseXml('<a>\n<b>')).toThrow(/<b> is never closed/);
    expect(() => parseXml('<a/><b/>')).toThrow(/a second root/);
    expect(() => parseXml('<a>&bogus;</a>')).toThrow(/unknown entity/);
    expect(() => parseXml('   ')).toThrow(/no root element/);
  });

  it('reads the pynvml helper\'s JSON and its failure form', () => {
    const r = parsePynvml(fixtureText('h200', 'load-00.pynvml.json'));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const g = r.gpus[0]!;
    expect(g.uuid).toBe(H200);
    expect(g.gpm?.metrics?.['1']).toBe(99.2);
    expect(g.processes).toEqual([{ pid: 48213, used_memory: 1474 * MIB, gpu_instance_id: null, compute_instance_id: null }]);
    expect(g.fields['29']).toEqual({ code: 3, error: 'Not Supported' });
    expect(parsePynvml('{"ok": false, "stage": "import", "error": "import pynvml failed: x"}')).toEqual({ ok: false, stage: 'import', error: 'import pynvml failed: x' });
    expect(() => parsePynvml('Traceback (most recent call last):')).toThrow(/not JSON/);
    expect(() => parsePynvml('{"ok": true}')).toThrow(/no "gpus"/);
    expect(() => parsePynvml('{"ok": true, "gpus": [{"index": 0}]}')).toThrow(/without index and uuid/);
  });

  it('parses the exporter\'s /metrics into families', () => {
    const s = parseScrape(fixtureText('h200', 'load-00.scrape.prom'));
    const util = seriesOf(s, 'DCGM_FI_DEV_GPU_UTIL');
    expect(util).toHaveLength(1);
    expect(util[0]!.labels).toMatchObject({ gpu: '0', UUID: H200, pci_bus_id: '00000000:19:00.0', device: 'nvidia0', modelName: 'NVIDIA H200', Hostname: 'gpu-node-h200-1', DCGM_FI_DRIVER_VERSION: '580.159.04' });
    expect(util[0]!.value).toBe(100);
    expect(s.get('DCGM_FI_DEV_FAN_SPEED')).toBeUndefined();
    // a histogram's samples stay in their family
    const gc = s.get('nodejs_gc_duration_seconds');
    expect(gc?.type).toBe('histogram');
    expect(new Set(gc?.series.map((x) => x.name))).toEqual(new Set(['nodejs_gc_duration_seconds_bucket', 'nodejs_gc_duration_seconds_sum', 'nodejs_gc_duration_seconds_count']));
    const odd = parseScrape('# TYPE x gauge\nx{a="q\\"uo,te",b="back\\\\slash",c="new\\nline"} 1.5\ny 2\nz{} NaN\n');
    expect(seriesOf(odd, 'x')[0]!.labels).toEqual({ a: 'q"uo,te', b: 'back\\slash', c: 'new\nline' });
    expect(scalar(odd, 'y')).toBe(2);
    expect(seriesOf(odd, 'z')[0]!.value).toBeNaN();
    expect(() => parseScrape('x{a="1" 2\n')).toThrow(/line 1/);
    expect(() => parseScrape('x{a=1} 2\n')).toThrow(/bad label set/);
  });

  it('reads values with units, yes/no, P-states, bit masks and N/A markers', () => {
    expect(numberWithUnit('81559 MiB')).toBe(81559);
    expect(numberWithUnit('72.05 W')).toBe(72.05);
    expect(numberWithUnit('0 %')).toBe(0);
    expect(numberWithUnit('12')).toBe(12);
    expect(numberWithUnit(undefined)).toBeUndefined();
    expect(numberWithUnit('[N/A]')).toEqual({ na: '[N/A]' });
    expect(numberWithUnit('N/A')).toEqual({ na: 'N/A' });
    expect(numberWithUnit('[Unknown Error]')).toEqual({ na: '[Unknown Error]' });
    expect(() => numberWithUnit('lots')).toThrow(/not a number/);
    expect(flag('Yes')).toBe(1);
    expect(flag('Disabled')).toBe(0);
    expect(flag('Not Active')).toBe(0);
    expect(() => flag('maybe')).toThrow();
    expect(pstate('P8')).toBe(8);
    expect(hexMask('0x0000000000000005')).toBe(5);
    expect(naMarker('[Not Supported]')).toEqual({ na: '[Not Supported]' });
    expect(naMarker('5')).toBeUndefined();
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
    expect(median([])).toBeUndefined();
  });

  it('asks nvidia-smi for the fields it knows: a rejected one is renamed or dropped', () => {
    const choice = initialChoice();
    expect(rejectedField('Field "clocks_event_reasons.active" is not a valid field to query.\n')).toBe('clocks_event_reasons.active');
    expect(rejectedField('NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver.')).toBeUndefined();
    expect(dropField(choice, 'clocks_event_reasons.active')).toBe(true);
    expect(choice.throttle).toBe('clocks_throttle_reasons.active');
    expect(dropField(choice, 'clocks_throttle_reasons.active')).toBe(true);
    expect(choice.throttle).toBeUndefined();
    expect(dropField(choice, 'power.draw.average')).toBe(true);
    expect(dropField(choice, 'no.such.field')).toBe(false);
    const { keys, fields } = queryFields(choice);
    expect(keys).not.toContain('throttle');
    expect(fields).not.toContain('power.draw.average');
    expect(fields[0]).toBe('index');
  });

  it('reads a pod\'s UID from a cgroup as the exporter labels it', () => {
    const uid = '0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b';
    expect(podUidFromCgroup(`0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${uid.replace(/-/g, '_')}.slice/cri-containerd-${'a'.repeat(64)}.scope\n`)).toBe(uid);
    expect(podUidFromCgroup(`12:memory:/kubepods/besteffort/pod${uid}/${'b'.repeat(64)}\n11:cpu:/kubepods/besteffort/pod${uid}/${'b'.repeat(64)}\n`)).toBe(uid);
    expect(podUidFromCgroup(`0::/kubepods.slice/kubepods-pod${'c'.repeat(32)}.slice\n`)).toBe('c'.repeat(32));
    expect(podUidFromCgroup('0::/user.slice/user-1000.slice/session-3.scope\n')).toBeUndefined();
    expect(podUidFromCgroup('0::/system.slice/kubelet.service\n')).toBeUndefined();
  });

  it('sees pids as this /proc does', () => {
    const info = pidInfo([process.pid, 2 ** 22 + 12345]);
    expect(info[String(process.pid)]).toEqual({ visible: true, inPod: false });
    expect(info[String(2 ** 22 + 12345)]).toEqual({ visible: false, inPod: false });
  });
});

// ---------------------------------------------------------------------------------------------

const python = spawnSync('python3', ['--version']).status === 0;

describe.skipIf(!python)('pynvml_read.py with a stand-in pynvml', () => {
  const helper = path.join(ROOT, 'scripts', 'gpu-check', 'pynvml_read.py');
  const run = (env: Record<string, string>, args: string[] = []) =>
    spawnSync('python3', ['-S', helper, '--gpm-seconds', '0', ...args], { encoding: 'utf8', env: { ...process.env, PYTHONPATH: '', ...env } });

  it('prints what the gpu-check parser reads', () => {
    const r = run({ PYTHONPATH: path.join(FIX, 'fake-pynvml') }, ['--events']);
    expect(r.status).toBe(0);
    const out = parsePynvml(r.stdout);
    expect(out.ok).toBe(true);
    if (!out.ok) return;
    expect(out.driver_version).toBe('580.159.04');
    const g = out.gpus[0]!;
    expect(g.uuid).toBe('GPU-11111111-2222-3333-4444-555555555555');
    expect(g.values).toMatchObject({ energy_mj: 81234567890, power_violation_ns: 41250000000, memory_reserved: 662700032, remapped_pending: 0, pcie_tx_kbps: 412 });
    expect(g.errors.mig_mode).toBe('NVML error 3: Not Supported');
    expect(g.fields['94']).toEqual({ value: 0 });
    expect(g.fields['29']).toEqual({ code: 3, error: 'Not Supported' });
    // a pynvml that rejects scoped field ids loses only those, as Python errors (no NVML code)
    expect(g.fields['138:4294967295']?.code).toBeUndefined();
    expect(g.fields['138:4294967295']?.error).toMatch(/^python: TypeError/);
    expect(g.gpm).toMatchObject({ supported: true, metrics: { '1': 12.5, '2': 10 }, errors: { '60': 'Not Supported', '61': 'not a number' } });
    expect(g.processes).toEqual([
      { pid: 4242, used_memory: 100 * MIB, gpu_instance_id: null, compute_instance_id: null },
      { pid: 4243, used_memory: null, gpu_instance_id: null, compute_instance_id: null },
    ]);
    expect(g.process_utilization).toEqual([{ pid: 4242, sm: 60, mem: 15, samples: 2 }]);
    expect(g.events).toEqual({ supported_types: 0x400f, registered: true });
    expect(g.read_at).toBeGreaterThanOrEqual(out.started_at);
  });

  it('says when pynvml is missing or NVML does not initialise', () => {
    expect(parsePynvml(run({}).stdout)).toMatchObject({ ok: false, stage: 'import' });
    expect(parsePynvml(run({ PYTHONPATH: path.join(FIX, 'fake-pynvml'), FAKE_PYNVML_INIT_FAIL: '1' }).stdout)).toMatchObject({ ok: false, stage: 'init', error: 'nvmlInit failed: Driver Not Loaded' });
    expect(run({}, ['--bogus']).status).toBe(2);
  });
});

// ---------------------------------------------------------------------------------------------

describe('gpu-check comparison on recorded runs', () => {
  it('passes the H200 run: every row passes or is a skip that says why', () => {
    const all = rows(load('h200'));
    expect(all.filter((r) => r.verdict === 'fail')).toEqual([]);
    expect(exitCode(all)).toBe(0);
    for (const r of all.filter((x) => x.verdict === 'skip')) expect(r.note).toMatch(/\S/);
    // the load shows where it should
    expect(row(all, 'DCGM_FI_DEV_GPU_UTIL', 'load').exporter).toBe('100 %');
    expect(row(all, 'gpu_busy_seconds_total', 'load').exporter).toBe('1 s/s');
    expect(row(all, 'gpu_busy_seconds_total', 'idle').exporter).toBe('0 s/s');
    expect(row(all, 'DCGM_FI_PROF_SM_ACTIVE', 'load').verdict).toBe('pass');
    expect(row(all, POD.processes, 'load', '0', 'listed and counted').reference).toMatch(/^pid 48213, 1474 MiB/);
    expect(row(all, POD.memoryUsed, 'load').exporter).toBe('1474 MiB');
    expect(row(all, POD.processes, 'after', '0', 'gone').verdict).toBe('pass');
    expect(row(all, 'kube_gpu_exporter_event_watch_up', 'idle', 'node').verdict).toBe('pass');
  });

  it('passes the MIG run, with MIG instances compared on their own series', () => {
    const all = rows(load('h100-mig'));
    expect(all.filter((r) => r.verdict === 'fail')).toEqual([]);
    expect(row(all, 'DCGM_FI_DEV_FB_TOTAL', 'idle', '0/GI 2').reference).toMatch(/^40192 MiB/);
    expect(row(all, 'gpu_mig_instance_info{GPU_I_PROFILE}', 'idle', '0/GI 3').exporter).toBe('2g.20gb');
    const busy = row(all, 'gpu_busy_seconds_total', 'load', '0/GI 2');
    expect(busy.tolerance).toContain('under load');
    expect(busy.reference).toContain('pynvml GPM graphics activity');
    expect(row(all, 'gpu_busy_seconds_total', 'load', '0/GI 3').tolerance).toContain('idle');
    // the whole GPU has no utilization in MIG mode, and nvidia-smi shows none either
    expect(row(all, 'DCGM_FI_DEV_GPU_UTIL', 'load')).toMatchObject({ exporter: 'absent', verdict: 'pass', note: 'absent on both' });
    expect(row(all, 'DCGM_FI_PROF_GR_ENGINE_ACTIVE', 'load', '0').verdict).toBe('pass');
    expect(row(all, POD.processes, 'load', '0/GI 2', 'listed and counted').verdict).toBe('pass');
  });

  it('has a rule for every family families.ts declares, and a row for each', () => {
    expect(uncoveredDeclaredFamilies()).toEqual([]);
    const all = rows(load('h200'));
    const families = new Set(all.map((r) => r.family.replace(/\{.*$/, '')));
    for (const name of declaredFamilyNames()) expect(families, name).toContain(name);
    expect(all.some((r) => r.note?.includes('no rule for this family'))).toBe(false);
    expect(row(all, 'process_* / nodejs_*', '-', 'node').exporter).toMatch(/^\d+ families$/);
    expect(RULES.length).toBeGreaterThan(10);
  });

  it('shows a family no rule knows as a skip row', () => {
    const run = load('h200');
    for (const s of run.snapshots) s.scrape.set('gpu_brand_new_thing', { name: 'gpu_brand_new_thing', type: 'gauge', series: [{ name: 'gpu_brand_new_thing', labels: {}, value: 1 }] });
    const r = row(rows(run), 'gpu_brand_new_thing', '-', 'node');
    expect(r.verdict).toBe('skip');
    expect(r.note).toContain('no rule for this family');
  });
});

// ---------------------------------------------------------------------------------------------

describe('gpu-check tolerances, just inside and just outside', () => {
  const verdict = (mutate: (run: RunData) => void, family: string, phase: PhaseName, gpu = '0', has?: string): string => {
    const run = load('h200');
    mutate(run);
    return row(rows(run), family, phase, gpu, has).verdict;
  };

  it('memory: total within 1 MiB, used and free within 5 MiB', () => {
    expect(verdict((r) => setSmi(r, 'idle', 'memTotal', '143772'), 'DCGM_FI_DEV_FB_TOTAL', 'idle')).toBe('pass');
    expect(verdict((r) => setSmi(r, 'idle', 'memTotal', '143773'), 'DCGM_FI_DEV_FB_TOTAL', 'idle')).toBe('fail');
    expect(verdict((r) => setSmi(r, 'idle', 'memReserved', '631'), 'DCGM_FI_DEV_FB_RESERVED', 'idle')).toBe('pass');
    expect(verdict((r) => setSmi(r, 'idle', 'memReserved', '630'), 'DCGM_FI_DEV_FB_RESERVED', 'idle')).toBe('fail');
    expect(verdict((r) => setSmi(r, 'load', 'memUsed', '1480'), 'DCGM_FI_DEV_FB_USED', 'load')).toBe('pass');
    expect(verdict((r) => setSmi(r, 'load', 'memUsed', '1481'), 'DCGM_FI_DEV_FB_USED', 'load')).toBe('fail');
    expect(verdict((r) => setSmi(r, 'load', 'memFree', '141659'), 'DCGM_FI_DEV_FB_FREE', 'load')).toBe('pass');
    expect(verdict((r) => setSmi(r, 'load', 'memFree', '141658'), 'DCGM_FI_DEV_FB_FREE', 'load')).toBe('fail');
  });

  it('temperatures within 3 C', () => {
    expect(verdict((r) => setSmi(r, 'load', 'tempGpu', '52'), 'DCGM_FI_DEV_GPU_TEMP', 'load')).toBe('pass');
    expect(verdict((r) => setSmi(r, 'load', 'tempGpu', '53'), 'DCGM_FI_DEV_GPU_TEMP', 'load')).toBe('fail');
    expect(verdict((r) => setSmi(r, 'idle', 'tempMem', '30'), 'DCGM_FI_DEV_MEMORY_TEMP', 'idle')).toBe('pass');
    expect(verdict((r) => setSmi(r, 'idle', 'tempMem', '29'), 'DCGM_FI_DEV_MEMORY_TEMP', 'idle')).toBe('fail');
  });

  it('power within 10 % or 15 W, the limit within 0.5 W', () => {
    // idle: the exporter says 74.213 W, so 15 W decides
    expect(verdict((r) => setSmi(r, 'idle', 'powerDraw', '89.20'), 'DCGM_FI_DEV_POWER_USAGE', 'idle')).toBe('pass');
    expect(verdict((r) => setSmi(r, 'idle', 'powerDraw', '89.30'), 'DCGM_FI_DEV_POWER_USAGE', 'idle')).toBe('fail');
    // load: 652.418 W, 10 % of the reference decides
    expect(verdict((r) => setSmi(r, 'load', 'powerDraw', '724.90'), 'DCGM_FI_DEV_POWER_USAGE', 'load')).toBe('pass');
    expect(verdict((r) => setSmi(r, 'load', 'powerDraw', '725.00'), 'DCGM_FI_DEV_POWER_USAGE', 'load')).toBe('fail');
    expect(verdict((r) => setSmi(r, 'idle', 'powerLimit', '700.50'), 'DCGM_FI_DEV_ENFORCED_POWER_LIMIT', 'idle')).toBe('pass');
    expect(verdict((r) => setSmi(r, 'idle', 'powerLimit', '700.60'), 'DCGM_FI_DEV_ENFORCED_POWER_LIMIT', 'idle')).toBe('fail');
  });

  it('maximum clocks exact, current clocks within 15 % or 150 MHz', () => {
    expect(verdict((r) => setSmi(r, 'idle', 'maxClockSm', '1981'), 'DCGM_FI_DEV_MAX_SM_CLOCK', 'idle')).toBe('fail');
    expect(verdict((r) => setSmi(r, 'idle', 'maxClockMem', '3201'), 'DCGM_FI_DEV_MAX_MEM_CLOCK', 'idle')).toBe('pass');
    expect(verdict((r) => setSmi(r, 'idle', 'clockSm', '495'), 'DCGM_FI_DEV_SM_CLOCK', 'idle')).toBe('pass');
    expect(verdict((r) => setSmi(r, 'idle', 'clockSm', '496'), 'DCGM_FI_DEV_SM_CLOCK', 'idle')).toBe('fail');
    // 1980 MHz under load: 15 % of the reference (about 297 MHz) decides
    expect(verdict((r) => setSmi(r, 'load', 'clockSm', '1722'), 'DCGM_FI_DEV_SM_CLOCK', 'load')).toBe('pass');
    expect(verdict((r) => setSmi(r, 'load', 'clockSm', '1720'), 'DCGM_FI_DEV_SM_CLOCK', 'load')).toBe('fail');
    expect(verdict((r) => setSmi(r, 'load', 'clockGr', '1722'), 'gpu_graphics_clock_hertz', 'load')).toBe('pass');
  });

  it('utilization: under load at least 90 % on both, idle at most 10 % on both', () => {
    expect(verdict((r) => setSmi(r, 'load', 'utilGpu', '90'), 'DCGM_FI_DEV_GPU_UTIL', 'load')).toBe('pass');
    expect(verdict((r) => setSmi(r, 'load', 'utilGpu', '89'), 'DCGM_FI_DEV_GPU_UTIL', 'load')).toBe('fail');
    expect(verdict((r) => setSeries(r, 'load', 'DCGM_FI_DEV_GPU_UTIL', 89), 'DCGM_FI_DEV_GPU_UTIL', 'load')).toBe('fail');
    expect(verdict((r) => setSmi(r, 'idle', 'utilGpu', '10'), 'DCGM_FI_DEV_GPU_UTIL', 'idle')).toBe('pass');
    expect(verdict((r) => setSmi(r, 'idle', 'utilGpu', '11'), 'DCGM_FI_DEV_GPU_UTIL', 'idle')).toBe('fail');
    expect(verdict((r) => setSeries(r, 'after', 'DCGM_FI_DEV_GPU_UTIL', 11), 'DCGM_FI_DEV_GPU_UTIL', 'after')).toBe('fail');
    // memory copy utilization under load: within 20 points
    expect(verdict((r) => setSmi(r, 'load', 'utilMem', '66'), 'DCGM_FI_DEV_MEM_COPY_UTIL', 'load')).toBe('pass');
    expect(verdict((r) => setSmi(r, 'load', 'utilMem', '67'), 'DCGM_FI_DEV_MEM_COPY_UTIL', 'load')).toBe('fail');
  });

  it('busy seconds: at least 0.8 s/s under load, at most 0.1 s/s idle, within 0.15 of nvidia-smi', () => {
    const busy = nameOf('gpuBusySeconds');
    const withRate = (phase: PhaseName, rate: number) => (run: RunData) => {
      const first = snapsOf(run, phase)[0]!;
      const t0 = sampleTs(first);
      const v0 = seriesOf(first.scrape, busy)[0]!.value;
      setSeries(run, phase, busy, (s) => v0 + rate * (sampleTs(s) - t0));
    };
    // nvidia-smi at 90 %: 0.8 is within 0.15 of 0.9 and at the threshold
    expect(verdict((r) => { setSmi(r, 'load', 'utilGpu', '90'); withRate('load', 0.8)(r); }, busy, 'load')).toBe('pass');
    expect(verdict((r) => { setSmi(r, 'load', 'utilGpu', '90'); withRate('load', 0.79)(r); }, busy, 'load')).toBe('fail');
    // nvidia-smi at 100 %: 0.86 is close enough, 0.84 is not
    expect(verdict(withRate('load', 0.86), busy, 'load')).toBe('pass');
    expect(verdict(withRate('load', 0.84), busy, 'load')).toBe('fail');
    expect(verdict(withRate('idle', 0.1), busy, 'idle')).toBe('pass');
    expect(verdict(withRate('idle', 0.11), busy, 'idle')).toBe('fail');
    expect(verdict(withRate('after', 0.11), busy, 'after')).toBe('fail');
  });

  it('GPM: within 0.15 of pynvml; graphics and SM activity high under load, low idle', () => {
    const gr = nameOf('grEngineActivePercent');
    const setPyGpm = (phase: PhaseName, id: string, v: number) => (run: RunData) => {
      for (const s of snapsOf(run, phase)) py(s).gpm!.metrics![id] = v;
    };
    // the exporter reads 0.992 under load
    expect(verdict(setPyGpm('load', '1', 84.3), gr, 'load')).toBe('pass');
    expect(verdict(setPyGpm('load', '1', 84.1), gr, 'load')).toBe('fail');
    expect(verdict(setPyGpm('load', '10', 56.7), nameOf('dramActivePercent'), 'load')).toBe('pass');
    expect(verdict(setPyGpm('load', '10', 56.9), nameOf('dramActivePercent'), 'load')).toBe('fail');
    // thresholds, with both sides moved together
    const both = (phase: PhaseName, family: string, id: string, ratio: number) => (run: RunData) => {
      setSeries(run, phase, family, ratio);
      setPyGpm(phase, id, ratio * 100)(run);
    };
    expect(verdict(both('load', nameOf('smActivePercent'), '2', 0.5), nameOf('smActivePercent'), 'load')).toBe('pass');
    expect(verdict(both('load', nameOf('smActivePercent'), '2', 0.49), nameOf('smActivePercent'), 'load')).toBe('fail');
    expect(verdict(both('idle', gr, '1', 0.1), gr, 'idle')).toBe('pass');
    expect(verdict(both('idle', gr, '1', 0.11), gr, 'idle')).toBe('fail');
    // PCIe bytes: 100 MiB/s or 25 %
    expect(verdict(setPyGpm('load', '21', 105.8), nameOf('gpmPcieTxMiBps'), 'load')).toBe('pass');
    expect(verdict(setPyGpm('load', '21', 106), nameOf('gpmPcieTxMiBps'), 'load')).toBe('fail');
  });

  it('GPM without pynvml: graphics and SM activity checked against their thresholds alone, the rest skipped', () => {
    const run = load('h200');
    run.meta.pynvml = { available: false, reason: 'python3 has no pynvml' };
    for (const s of run.snapshots) delete s.py;
    const all = rows(run);
    const gr = row(all, nameOf('grEngineActivePercent'), 'load');
    expect(gr.verdict).toBe('pass');
    expect(gr.note).toContain('threshold only: python3 has no pynvml');
    expect(row(all, nameOf('tensorActivePercent'), 'load')).toMatchObject({ verdict: 'skip', note: 'python3 has no pynvml' });
    expect(row(all, nameOf('powerViolationNs'), 'idle').verdict).toBe('skip');
    expect(row(all, 'kube_gpu_exporter_event_watch_up', 'idle', 'node').verdict).toBe('skip');
    expect(exitCode(all)).toBe(0);
    const low = load('h200');
    low.meta.pynvml = { available: false, reason: 'none' };
    for (const s of low.snapshots) delete s.py;
    setSeries(low, 'load', nameOf('smActivePercent'), 0.3);
    expect(row(rows(low), nameOf('smActivePercent'), 'load').verdict).toBe('fail');
  });

  it('throttle reasons: bits that hold still on both sides must agree, bits that move are not compared', () => {
    const mask = nameOf('clocksEventReasons');
    expect(verdict((r) => setSmi(r, 'idle', 'throttle', '0x0000000000000000'), mask, 'idle')).toBe('fail');
    expect(verdict((r) => setSmi(r, 'idle', 'throttle', '0x0000000000000000'), nameOf('clocksEventReasons', true), 'idle')).toBe('fail');
    // a bit unknown to NVML's reason table is ignored
    expect(verdict((r) => setSmi(r, 'idle', 'throttle', '0x0000000000010001'), mask, 'idle')).toBe('pass');
    // sw_power_cap flapping in nvidia-smi's readings under load: not compared
    const flap = (run: RunData) => {
      snapsOf(run, 'load').forEach((s, i) => {
        for (const r of s.smi ?? []) r.throttle = i % 2 ? '0x0000000000000004' : '0x0000000000000000';
      });
    };
    expect(verdict(flap, mask, 'load')).toBe('pass');
  });

  it('counters the reference reads later may be ahead only by what can accrue meanwhile', () => {
    const viol = nameOf('powerViolationNs');
    const setPyValue = (phase: PhaseName, key: 'power_violation_ns' | 'energy_mj', f: (s: Snapshot, old: number) => number) => (run: RunData) => {
      for (const s of snapsOf(run, phase)) py(s).values[key] = f(s, py(s).values[key]!);
    };
    const lag = (s: Snapshot) => py(s).read_at - sampleTs(s);
    // violation time: at most 1 s per second elapsed, plus 1 s
    expect(verdict(setPyValue('idle', 'power_violation_ns', (s, v) => v + Math.floor((lag(s) + 1) * 1e9) - 1000), viol, 'idle')).toBe('pass');
    expect(verdict(setPyValue('idle', 'power_violation_ns', (s, v) => v + Math.ceil((lag(s) + 1) * 1e9) + 2000), viol, 'idle')).toBe('fail');
    expect(verdict(setPyValue('idle', 'power_violation_ns', (_s, v) => v - 2000), viol, 'idle')).toBe('fail');
    // energy: at most 1.2 x the 700 W limit per second elapsed, plus 1 s
    const energy = nameOf('totalEnergyMillijoules');
    const allowed = (s: Snapshot) => (lag(s) + 1) * 700 * 1.2 * 1000;
    const exp = (s: Snapshot) => seriesOf(s.scrape, energy)[0]!.value;
    expect(verdict(setPyValue('load', 'energy_mj', (s) => Math.floor(exp(s) + allowed(s)) - 1), energy, 'load', '0', 'read later')).toBe('pass');
    expect(verdict(setPyValue('load', 'energy_mj', (s) => Math.ceil(exp(s) + allowed(s)) + 1), energy, 'load', '0', 'read later')).toBe('fail');
    // and the counter's growth is the power nvidia-smi shows
    expect(verdict((r) => setSmi(r, 'load', 'powerDraw', '580.00'), energy, 'load', '0', 'growth')).toBe('fail');
    // PCIe replays: up to 10 more in the later reading
    const replay = nameOf('pcieReplays');
    const setXml = (n: string) => (run: RunData) => {
      for (const s of snapsOf(run, 'idle')) for (const g of s.xml?.gpus ?? []) g.pcie.replayCounter = n;
    };
    expect(verdict(setXml('10'), replay, 'idle')).toBe('pass');
    expect(verdict(setXml('11'), replay, 'idle')).toBe('fail');
  });

  it('ECC counts, retired pages and remapped rows exactly; remapped rows from pynvml when the XML has none', () => {
    expect(verdict((r) => setSmi(r, 'idle', 'eccSbeVol', '1'), nameOf('eccSbeVolatile'), 'idle')).toBe('fail');
    expect(verdict((r) => setSmi(r, 'idle', 'eccDbeAgg', '0'), nameOf('eccDbeAggregate'), 'idle')).toBe('pass');
    const remap = nameOf('remappedRowsCorrectable');
    expect(verdict((r) => { for (const s of snapsOf(r, 'idle')) for (const g of s.xml?.gpus ?? []) g.remappedRows.correctable = '1'; }, remap, 'idle')).toBe('fail');
    const run = load('h200');
    for (const s of run.snapshots) delete s.xml;
    const r = row(rows(run), remap, 'idle');
    expect(r.verdict).toBe('pass');
    expect(r.reference).toContain('pynvml nvmlDeviceGetRemappedRows');
  });

  it('N/A: absent in the exporter passes, a value where nvidia-smi has none fails, no reading skips', () => {
    const fan = nameOf('fanSpeedPercent');
    const all = rows(load('h200'));
    expect(row(all, fan, 'idle')).toMatchObject({ exporter: 'absent', verdict: 'pass', note: 'absent on both' });
    expect(row(all, fan, 'idle').reference).toContain('[Not Supported]');
    // the exporter invents a value
    const invented = load('h200');
    for (const s of invented.snapshots) {
      const util = s.scrape.get('DCGM_FI_DEV_GPU_UTIL')!;
      s.scrape.set(fan, { name: fan, type: 'gauge', series: util.series.map((x) => ({ ...x, name: fan, value: 30 })) });
    }
    expect(row(rows(invented), fan, 'idle')).toMatchObject({ verdict: 'fail', note: 'the exporter has a value where nvidia-smi fan.speed has none' });
    // a value nvidia-smi has and the exporter lacks
    expect(verdict((r) => setSeries(r, 'idle', 'DCGM_FI_DEV_GPU_TEMP', undefined), 'DCGM_FI_DEV_GPU_TEMP', 'idle')).toBe('fail');
    // a field this nvidia-smi does not know: nothing to compare, and the XML stands in where it can
    const older = load('h200');
    older.meta.smiFields = { keys: older.meta.smiFields.keys.filter((k) => k !== 'pstate' && k !== 'tempMem'), fields: older.meta.smiFields.fields };
    for (const s of older.snapshots) {
      for (const r of s.smi ?? []) {
        delete r.pstate;
        delete r.tempMem;
      }
    }
    const olderRows = rows(older);
    expect(row(olderRows, 'DCGM_FI_DEV_PSTATE', 'idle')).toMatchObject({ verdict: 'skip', note: 'this nvidia-smi has no --query-gpu field for pstate' });
    const memTemp = row(olderRows, 'DCGM_FI_DEV_MEMORY_TEMP', 'idle');
    expect(memTemp.verdict).toBe('pass');
    expect(memTemp.reference).toContain('nvidia-smi -q -x temperature/memory_temp');
  });

  it('processes: the load\'s pid is listed and counted with its memory, and gone afterwards', () => {
    expect(verdict((r) => {
      for (const s of snapsOf(r, 'load')) for (const a of s.apps ?? []) a.pid = 999;
    }, POD.processes, 'load', '0', 'listed and counted')).toBe('fail');
    // the exporter counts no process outside pods
    expect(verdict((r) => setSeries(r, 'load', POD.processes, undefined), POD.processes, 'load', '0', 'listed and counted')).toBe('fail');
    expect(verdict((r) => setSeries(r, 'load', POD.processes, 2), POD.processes, 'load', '0', 'exact')).toBe('fail');
    // memory: within 4 MiB (pynvml's bytes), else 1 MiB more per process nvidia-smi rounds
    expect(verdict((r) => setSeries(r, 'load', POD.memoryUsed, (_s, v) => v + 4 * MIB), POD.memoryUsed, 'load')).toBe('pass');
    expect(verdict((r) => setSeries(r, 'load', POD.memoryUsed, (_s, v) => v + 4 * MIB + 1024), POD.memoryUsed, 'load')).toBe('fail');
    const smiOnly = (run: RunData) => {
      for (const s of snapsOf(run, 'load')) py(s).processes = null;
    };
    expect(verdict((r) => { smiOnly(r); setSeries(r, 'load', POD.memoryUsed, (_s, v) => v + 5 * MIB); }, POD.memoryUsed, 'load')).toBe('pass');
    expect(verdict((r) => { smiOnly(r); setSeries(r, 'load', POD.memoryUsed, (_s, v) => v + 5 * MIB + 1024); }, POD.memoryUsed, 'load')).toBe('fail');
    // still listed after the load stopped
    expect(verdict((r) => {
      for (const s of snapsOf(r, 'after')) s.apps = [{ pid: 48213, gpuUuid: H200, usedMemory: '1474', processName: 'python3' }];
    }, POD.processes, 'after', '0', 'gone')).toBe('fail');
    // SM utilization of the processes: within 0.25 of pynvml, at least 0.5 under load
    const setSm = (sm: number) => (run: RunData) => {
      for (const s of snapsOf(run, 'load')) py(s).process_utilization = [{ pid: 48213, sm, mem: 40, samples: 6 }];
    };
    expect(verdict(setSm(74), POD.smUtilization, 'load')).toBe('pass');
    expect(verdict(setSm(72), POD.smUtilization, 'load')).toBe('fail');
    expect(verdict((r) => { setSm(45)(r); setSeries(r, 'load', POD.smUtilization, 0.45); }, POD.smUtilization, 'load')).toBe('fail');
  });

  it('processes in another pid namespace: the load cannot be matched and is skipped, and counts as unplaced', () => {
    const run = load('h200');
    for (const s of snapsOf(run, 'load')) {
      for (const a of s.apps ?? []) a.pid = 7;
      s.pids = { '7': { visible: false, inPod: false } };
      for (const g of s.py?.ok ? s.py.gpus : []) g.processes = [];
    }
    const all = rows(run);
    expect(row(all, POD.processes, 'load', '0', 'listed and counted')).toMatchObject({ verdict: 'skip' });
    expect(row(all, POD.processes, 'load', '0', 'listed and counted').note).toContain('pid namespace');
    expect(row(all, 'kube_gpu_exporter_unplaced_processes', 'load', 'node')).toMatchObject({ verdict: 'fail', reference: '1 (nvidia-smi compute apps without /proc/<pid> here)' });
  });

  it('processes in a pod: compared with the exporter\'s series of that pod_uid', () => {
    const uid = '0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b';
    const inPod = (exporterToo: boolean) => {
      const run = load('h200');
      for (const s of snapsOf(run, 'load')) {
        s.pids = { '48213': { visible: true, inPod: true, podUid: uid } };
        if (!exporterToo) continue;
        for (const f of [POD.processes, POD.memoryUsed, POD.smUtilization]) for (const sr of s.scrape.get(f)?.series ?? []) sr.labels.pod_uid = uid;
      }
      return rows(run);
    };
    const all = inPod(true);
    expect(row(all, POD.processes, 'load', '0', 'listed and counted')).toMatchObject({ verdict: 'pass', reference: `pid 48213, 1474 MiB (nvidia-smi --query-compute-apps, memory from pynvml, in pod ${uid})` });
    expect(row(all, `${POD.processes}{pod_uid="${uid}"}`, 'load')).toMatchObject({ exporter: '1', verdict: 'pass' });
    expect(row(all, `${POD.memoryUsed}{pod_uid="${uid}"}`, 'load')).toMatchObject({ exporter: '1474 MiB', verdict: 'pass' });
    expect(row(all, POD.processes, 'load', '0', 'empty pod labels')).toMatchObject({ exporter: '0', verdict: 'pass' });
    expect(exitCode(all)).toBe(0);
    // the exporter puts the pod's process outside pods: both groups disagree
    const wrong = inPod(false);
    expect(row(wrong, `${POD.processes}{pod_uid="${uid}"}`, 'load').verdict).toBe('fail');
    expect(row(wrong, POD.processes, 'load', '0', 'empty pod labels').verdict).toBe('fail');
    expect(row(wrong, POD.processes, 'load', '0', 'listed and counted').verdict).toBe('fail');
  });

  it('identity labels exactly as nvidia-smi shows them', () => {
    expect(verdict((r) => setSmi(r, 'idle', 'driver', '580.159.05'), 'gpu_info{DCGM_FI_DRIVER_VERSION}', 'idle')).toBe('fail');
    expect(verdict((r) => setSmi(r, 'idle', 'busId', '00000000:1A:00.0'), 'gpu_info{pci_bus_id}', 'idle')).toBe('fail');
    expect(verdict((r) => { r.meta.nodeName = 'other-node'; }, 'gpu_info{Hostname}', 'idle')).toBe('fail');
    expect(verdict((r) => setSmi(r, 'idle', 'name', 'NVIDIA H200'), 'gpu_info{modelName}', 'idle')).toBe('pass');
  });

  it('a reading that failed is a FAIL row; no load and no pynvml are skips that say why', () => {
    const failed = load('h200');
    snapsOf(failed, 'load')[1]!.errors['nvidia-smi -q -x'] = 'nvidia-smi -q -x: no answer in time';
    const f = row(rows(failed), '(nvidia-smi -q -x)', 'load', 'node');
    expect(f).toMatchObject({ verdict: 'fail', note: 'failed in 1 of 6 snapshots' });
    expect(exitCode(rows(failed))).toBe(1);
    const unparsable = readRecording(path.join(FIX, 'h200'));
    unparsable.snapshots[0]!.xml = '<nvidia_smi_log><gpu>';
    expect(row(rows(parseRun(unparsable)), '(nvidia-smi -q -x)', 'idle', 'node').reference).toMatch(/^cannot parse: XML line 1: <gpu> is never closed/);
    const aborted = load('h200');
    aborted.meta.aborted = '/metrics answered 503';
    expect(row(rows(aborted), '(run)', 'after', 'node')).toMatchObject({ verdict: 'fail', note: 'stopped early: /metrics answered 503' });
    // no load: the idle phase alone
    const noLoad = readRecording(path.join(FIX, 'h200'));
    noLoad.snapshots = noLoad.snapshots.filter((s) => s.phase === 'idle');
    delete noLoad.meta.load;
    noLoad.meta.loadSkipped = 'python3 has no torch; nvcc not found';
    const idleOnly = rows(parseRun(noLoad));
    expect(row(idleOnly, '(load phase)', 'load', 'node')).toMatchObject({ verdict: 'skip' });
    expect(row(idleOnly, '(load phase)', 'load', 'node').note).toContain('python3 has no torch; nvcc not found');
    expect(idleOnly.some((r) => r.phase === 'load' && r.family !== '(load phase)')).toBe(false);
    expect(exitCode(idleOnly)).toBe(0);
  });

  it('uses the tolerances it documents', () => {
    expect(TOL).toMatchObject({ memoryRoundingMiB: 1, temperatureC: 3, powerFraction: 0.1, powerMinW: 15, utilLoadMin: 90, utilIdleMax: 10, busyLoadMin: 0.8, busyIdleMax: 0.1, gpmVsPynvml: 0.15 });
    const doc = readFileSync(path.join(ROOT, 'docs', 'gpu-check.md'), 'utf8');
    for (const text of ['within 1 MiB', '3 C', '10 % or 15 W', '>= 90 %', '<= 10 %', '0.8 s', '0.1 s', '0.15']) expect(doc).toContain(text);
  });
});

// ---------------------------------------------------------------------------------------------

describe('gpu-check table and options', () => {
  it('renders one aligned table with a summary line', () => {
    const sample: Row[] = [
      { family: 'DCGM_FI_DEV_GPU_TEMP', gpu: '0', phase: 'idle', exporter: '27 C', reference: '27 C (nvidia-smi temperature.gpu)', tolerance: '±3 C', verdict: 'pass' },
      { family: 'DCGM_FI_DEV_FB_TOTAL', gpu: '0', phase: 'idle', exporter: '100 MiB', reference: '200 MiB (nvidia-smi memory.total)', tolerance: '±1 MiB (rounding)', verdict: 'fail', note: 'off by 100 MiB' },
      { family: 'x'.repeat(80), gpu: 'node', phase: '-', exporter: '-', reference: '-', tolerance: '-', verdict: 'skip', note: 'no independent reference: why' },
    ];
    const text = renderTable(sample);
    const lines = text.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^family\s+gpu\s+phase\s+exporter\s+reference\s+tolerance\s+verdict\s+note$/);
    expect(lines[1]).toMatch(/^-+( +-+)+$/);
    const col = lines[0]!.indexOf('verdict');
    expect(lines[2]!.slice(col, col + 4)).toBe('pass');
    expect(lines[3]!.slice(col, col + 4)).toBe('FAIL');
    expect(lines[4]!.slice(col, col + 4)).toBe('skip');
    expect(lines[4]!.startsWith(`${'x'.repeat(63)}~`)).toBe(true);
    expect(lines[lines.length - 1]).toBe('3 rows: 1 pass, 1 fail, 1 skip');
    expect(exitCode(sample)).toBe(1);
    expect(exitCode(sample.filter((r) => r.verdict !== 'fail'))).toBe(0);
  });

  it('parses its options', () => {
    expect(parseOptions([])).toEqual({ python: 'python3', phaseSeconds: DEFAULT_PHASE_SECONDS, help: false });
    expect(parseOptions(['--nvml-library', '/lib/x.so', '--nvidia-smi=/usr/bin/nvidia-smi', '--python', 'py3', '--record', '/tmp/r', '--phase-seconds', '10'])).toEqual({
      nvmlLibrary: '/lib/x.so', nvidiaSmi: '/usr/bin/nvidia-smi', python: 'py3', record: '/tmp/r', phaseSeconds: { idle: 10, load: 10, after: 10 }, help: false,
    });
    expect(parseOptions(['--phase-seconds=5,30,60']).phaseSeconds).toEqual({ idle: 5, load: 30, after: 60 });
    expect(parseOptions(['--replay', 'dir']).replay).toBe('dir');
    expect(() => parseOptions(['--phase-seconds', '4'])).toThrow(UsageError);
    expect(() => parseOptions(['--phase-seconds', '61'])).toThrow(/from 5 to 60/);
    expect(() => parseOptions(['--phase-seconds', '10,20'])).toThrow(/IDLE,LOAD,AFTER/);
    expect(() => parseOptions(['--record'])).toThrow(/needs a value/);
    expect(() => parseOptions(['--reset-gpu'])).toThrow(/unknown option/);
  });

  it('starts the compiled exporter as the README says, with no kubelet and 1 s samples', () => {
    expect(exporterArgs('/repo')).toEqual([
      '--max-semi-space-size=1', '--max-old-space-size=96', '--no-turbofan', '--single-threaded-gc', '/repo/dist/src/main.js',
      '--kubelet.socket=none', '--web.listen-address=127.0.0.1:0', '--sample-interval=1s',
    ]);
    expect(exporterArgs('/repo', '/opt/libnvidia-ml.so.1').at(-1)).toBe('--nvml.library=/opt/libnvidia-ml.so.1');
  });

  it('never passes nvidia-smi an option that changes a GPU', () => {
    const sources = ['references.ts', 'preflight.ts', 'main.ts', 'load.ts'].map((f) => readFileSync(path.join(ROOT, 'scripts', 'gpu-check', f), 'utf8')).join('\n');
    for (const bad of ["'-pm'", "'-pl'", "'-mig'", "'-r'", "'-lgc'", "'-rgc'", "'-ac'", "'-c'", '--gpu-reset', 'nvmlDeviceSet']) expect(sources).not.toContain(bad);
    const helper = readFileSync(path.join(ROOT, 'scripts', 'gpu-check', 'pynvml_read.py'), 'utf8');
    expect(helper).not.toMatch(/nv\.(nvmlDeviceSet|nvmlGpmSetStreamingEnabled|nvmlDeviceReset|nvmlDeviceClearEccErrorCounts)/);
  });
});

// ---------------------------------------------------------------------------------------------

describe('gpu-check as a command', () => {
  const main = path.join('scripts', 'gpu-check', 'main.ts');
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'gpu-check-test-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const script = (name: string, body: string): string => {
    const f = path.join(tmp, name);
    writeFileSync(f, `#!/bin/sh\n${body}\n`);
    chmodSync(f, 0o755);
    return f;
  };
  const lines = (s: string) => s.split('\n').filter((l) => l !== '');

  it('exits 3 with one line when the nvidia-smi given is not there', () => {
    const r = spawnSync('npx', ['tsx', main, '--nvidia-smi', '/nonexistent'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status).toBe(3);
    expect(lines(r.stderr)).toEqual(['no NVIDIA GPU or driver: nvidia-smi not found (no executable at /nonexistent)']);
    expect(r.stdout).toBe('');
  });

  it('exits 3 with one line when no nvidia-smi is on PATH', () => {
    const empty = mkdtempSync(path.join(tmp, 'path-'));
    const r = spawnSync(process.execPath, ['--import', 'tsx', main], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, PATH: empty } });
    expect(r.status).toBe(3);
    expect(lines(r.stderr)).toEqual(['no NVIDIA GPU or driver: nvidia-smi not found (not on PATH)']);
  });

  it('exits 3 when nvidia-smi lists no GPU, or cannot reach the driver', () => {
    const none = script('smi-none', 'echo "No devices were found"; exit 6');
    const r = spawnSync(process.execPath, ['--import', 'tsx', main, '--nvidia-smi', none], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status).toBe(3);
    expect(lines(r.stderr)).toEqual(['no NVIDIA GPU or driver: nvidia-smi lists no GPU']);
    const broken = script('smi-broken', 'echo "NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running."; exit 9');
    const b = spawnSync(process.execPath, ['--import', 'tsx', main, '--nvidia-smi', broken], { cwd: ROOT, encoding: 'utf8' });
    expect(b.status).toBe(3);
    expect(lines(b.stderr)).toHaveLength(1);
    expect(b.stderr).toMatch(/^no NVIDIA GPU or driver: nvidia-smi -L exited 9: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver/);
  });

  it('exits 3 when libnvidia-ml.so.1 cannot be loaded', () => {
    const smi = script('smi-one', `[ "$1" = "-L" ] && echo "GPU 0: NVIDIA H200 (UUID: ${H200})" && exit 0; exit 2`);
    const r = spawnSync(process.execPath, ['--import', 'tsx', main, '--nvidia-smi', smi, '--nvml-library', '/nonexistent/libnvidia-ml.so.1'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status).toBe(3);
    expect(lines(r.stderr)).toEqual(['libnvidia-ml.so.1 cannot be loaded: NVML library not found; tried: /nonexistent/libnvidia-ml.so.1 (no such file)']);
  });

  it('replays a recording: exit 0 when everything is within tolerance, 1 when not', () => {
    const ok = spawnSync(process.execPath, ['--import', 'tsx', main, '--replay', path.join(FIX, 'h200')], { cwd: ROOT, encoding: 'utf8' });
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/verdict: everything compared is within tolerance; \d+ rows skipped, each saying why/);
    expect(ok.stdout).toMatch(/\n\d+ rows: \d+ pass, 0 fail, \d+ skip\n$/);
    const copy = path.join(tmp, 'h200-changed');
    cpSync(path.join(FIX, 'h200'), copy, { recursive: true });
    const csv = path.join(copy, 'idle-00.smi.csv');
    writeFileSync(csv, readFileSync(csv, 'utf8').replace(', 143771, ', ', 143700, '));
    const bad = spawnSync(process.execPath, ['--import', 'tsx', main, '--replay', copy], { cwd: ROOT, encoding: 'utf8' });
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(/DCGM_FI_DEV_FB_TOTAL .* FAIL /);
    const usage = spawnSync(process.execPath, ['--import', 'tsx', main, '--bogus'], { cwd: ROOT, encoding: 'utf8' });
    expect(usage.status).toBe(2);
  });
});
