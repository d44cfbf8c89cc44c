import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { replaceScenarioFile } from '../src/sim/scenario-file.js';
import { simulatedNode } from '../src/sim/harness.js';
import { startSimulatedPods, type SimulatedPods } from '../src/sim/simulated-pods.js';
import type { NodeView } from '../src/view/node-view.js';
import { scenarioCopy, startExporterProcess, waitFor, type RunningExporter } from './support/exporter-process.js';

/**
 * The node page in a real browser: the system Chromium (Debian package `chromium`, installed by
 * .ci/run; CHROMIUM_PATH overrides the path), driven by puppeteer-core, against the exporter's
 * CLI on the demo's simulated 8x H100 node with its pods (fake kubelet and host tree), and on
 * the gpu-lost node (behind basic auth from a web config). Every page is watched for requests that leave the exporter's origin, failed
 * requests, error responses, console errors, script errors and Content-Security-Policy violations.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const WHY_SKIPPED = `no Chromium at ${CHROMIUM}: install the Debian package chromium (.ci/run does) or set CHROMIUM_PATH`;
if (!HAVE_CHROMIUM) process.stderr.write(`test/node-page.browser.test.ts skipped: ${WHY_SKIPPED}\n`);

/** GPU 5 of the demo node renamed to markup: the page must show it as text, never run it. */
const HOSTILE_MODEL = '<img src=x onerror=window.__xss=1>';
/** The gpu-lost exporter's only user (its web config). */
const ALICE = { username: 'alice', password: 'alice-pw' };
const ALICE_HEADER = { Authorization: `Basic ${Buffer.from(`${ALICE.username}:${ALICE.password}`).toString('base64')}` };

let browser: Browser;
let demo: RunningExporter;
let lost: RunningExporter;
let pods: SimulatedPods;
let demoState: { path: string; text: string };

beforeAll(async () => {
  if (!HAVE_CHROMIUM) return;
  const node = simulatedNode('h100x8');
  const copy = scenarioCopy('h100x8');
  const text = `${readFileSync(copy.statePath, 'utf8')}\ngpu.5.name ${HOSTILE_MODEL}\n`;
  replaceScenarioFile(copy.statePath, text);
  demoState = { path: copy.statePath, text };
  // the pods of h100x8.pods.json (device ids resolved against the same GPUs as the copy's)
  pods = await startSimulatedPods(node.statePath, { nodeName: 'golden-node' });

  // gpu-lost: GPU 3 reports Xid 79 and falls off the bus 3 s after nvmlInit (20 s in the shipped file)
  const lostCopy = scenarioCopy('gpu-lost');
  const shipped = readFileSync(lostCopy.statePath, 'utf8');
  const sooner = shipped.replace('fault * 3 15 20000', 'fault * 3 15 3000').replace('event 3 xid 79 19900', 'event 3 xid 79 2900');
  if (!sooner.includes('fault * 3 15 3000') || !sooner.includes('event 3 xid 79 2900')) throw new Error('scenarios/gpu-lost.sim changed: GPU 3 is no longer lost at 20 s after an Xid 79 at 19.9 s');
  replaceScenarioFile(lostCopy.statePath, sooner);
  const webConfig = path.join(path.dirname(lostCopy.statePath), 'web.yml');
  writeFileSync(webConfig, `basic_auth_users:\n  ${ALICE.username}: ${bcrypt.hashSync(ALICE.password, 4)}\n`);

  [browser, demo, lost] = await Promise.all([
    puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] }),
    startExporterProcess({ library: node.libraryPath, statePath: copy.statePath, args: [...pods.flags, '--sample-interval=250ms'] }),
    startExporterProcess({ library: simulatedNode('gpu-lost').libraryPath, statePath: lostCopy.statePath, args: ['--kubelet.socket=none', '--sample-interval=250ms', `--web.config.file=${webConfig}`] }),
  ]);
  await waitFor(async () => ((await (await fetch(`${demo.url}/api/v1/node`)).json()) as NodeView).exporter.kubelet?.up, 20_000, 'the kubelet answering the demo exporter');
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await Promise.all([demo?.stop(), lost?.stop()]);
  await pods?.stop();
});

interface Watched {
  page: Page;
  origin: string;
  /** Every request the page made, failed requests, error responses, console errors, script errors. */
  requests: string[];
  problems: string[];
  navigations: number;
  /** Asserts nothing left the origin and nothing went wrong; closes the page. */
  done(): Promise<void>;
}

async function open(baseUrl: string, credentials?: { username: string; password: string }): Promise<Watched> {
  const page = await browser.newPage();
  if (credentials) await page.authenticate(credentials);
  await page.setViewport({ width: 1500, height: 1000 });
  const w: Watched = {
    page,
    origin: new URL(baseUrl).origin,
    requests: [],
    problems: [],
    navigations: 0,
    async done() {
      const csp = await page.evaluate(() => (window as unknown as { __csp: string[] }).__csp);
      const elsewhere = w.requests.filter((u) => !u.startsWith('data:') && new URL(u).origin !== w.origin);
      await page.close();
      expect(elsewhere, 'requests that left the origin').toEqual([]);
      expect(csp, 'Content-Security-Policy violations').toEqual([]);
      expect(w.problems).toEqual([]);
    },
  };
  page.on('request', (r) => w.requests.push(r.url()));
  page.on('requestfailed', (r) => w.problems.push(`request failed: ${r.url()}: ${r.failure()?.errorText}`));
  page.on('response', (r) => {
    if (r.status() >= 400) w.problems.push(`HTTP ${r.status()}: ${r.url()}`);
  });
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warn') w.problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => w.problems.push(`script error: ${e instanceof Error ? e.message : String(e)}`));
  page.on('framenavigated', (f) => {
    if (f === page.mainFrame()) w.navigations++;
  });
  await page.evaluateOnNewDocument(() => {
    const csp: string[] = [];
    (window as unknown as { __csp: string[] }).__csp = csp;
    document.addEventListener('securitypolicyviolation', (e) => csp.push(`${e.violatedDirective}: ${e.blockedURI}`));
  });
  await page.goto(`${baseUrl}/`, { waitUntil: 'load' });
  return w;
}

interface Row {
  gpu: string;
  mig: string | undefined;
  uuid: string | undefined;
  lost: boolean;
  model: string;
  util: string;
  memory: string;
  temp: string;
  power: string;
  clocks: string;
  pods: string[];
  holders: string[];
  health: string;
}

/** The device rows as the page shows them. */
function rows(page: Page): Promise<Row[]> {
  return page.$$eval('#devices-body tr', (trs) =>
    trs.map((tr) => {
      const cell = (c: string): string => tr.querySelector(`td.${c}`)?.textContent ?? '';
      return {
        gpu: tr.dataset.gpu!,
        mig: tr.dataset.mig,
        uuid: tr.dataset.uuid,
        lost: tr.classList.contains('lost'),
        model: tr.querySelector('td.model .model-name')?.textContent ?? '',
        util: cell('util'),
        memory: cell('memory'),
        temp: cell('temp'),
        power: cell('power'),
        clocks: cell('clocks'),
        pods: [...tr.querySelectorAll<HTMLElement>('td.holders li.holder')].map((li) => li.dataset.pod!),
        holders: [...tr.querySelectorAll('td.holders li')].map((li) => [...li.children].map((c) => c.textContent).join(' | ')),
        health: cell('health'),
      };
    }),
  );
}

const view = async (url: string, headers: Record<string, string> = {}): Promise<NodeView> => (await (await fetch(`${url}/api/v1/node`, { headers })).json()) as NodeView;

describe.skipIf(!HAVE_CHROMIUM)('the node page in Chromium', () => {
  it('shows the eight GPUs of the demo node with their values, the exporter state, and markup in a model name as text', async () => {
    const w = await open(demo.url);
    // utilization needs two readings of the busy-seconds counter: the page's second poll brings them
    await w.page.waitForFunction(() => [...document.querySelectorAll('#devices-body tr.gpu td.util')].filter((td) => /%/.test(td.textContent ?? '')).length === 7, { timeout: 20_000 });
    const all = await rows(w.page);
    const gpus = all.filter((r) => r.mig === undefined);
    expect(gpus.map((r) => r.gpu)).toEqual(['0', '1', '2', '3', '4', '5', '6', '7']);
    expect(gpus.map((r) => r.model)).toEqual([...Array(5).fill('NVIDIA H100 80GB HBM3'), HOSTILE_MODEL, 'NVIDIA H100 80GB HBM3', 'NVIDIA H100 80GB HBM3']);
    expect(await w.page.evaluate(() => [document.querySelectorAll('img').length, typeof (window as unknown as { __xss?: number }).__xss])).toEqual([0, 'undefined']);
    for (const r of gpus) {
      expect(r.lost).toBe(false);
      expect(r.memory, `GPU ${r.gpu}`).toMatch(/^\d+\.\d \/ 79\.6 GiB$/);
      expect(r.temp, `GPU ${r.gpu}`).toMatch(/^\d+ °C$/);
      expect(r.power, `GPU ${r.gpu}`).toMatch(/^\d+ \/ 700 W$/);
      expect(r.health, `GPU ${r.gpu}`).toBe('ok');
      // GPU 7 is in MIG mode: no utilization of its own, its instances have theirs
      expect(r.util, `GPU ${r.gpu}`).toMatch(r.gpu === '7' ? /^—$/ : /^\d+(\.\d)? %last \d+(\.\d)? (s|min)$/);
    }
    // GPU 6: allocated to notebook-bob and idle, clocks held by gpu_idle (harmless)
    expect(gpus[6]!.clocks).toBe('gpu_idle');
    expect(gpus[6]!.holders).toEqual(['ml-research/notebook-bob | notebook | 1 GPU | idle']);
    expect(gpus.filter((r) => r.holders.some((h) => h.endsWith('| idle'))).map((r) => r.gpu)).toEqual(['6']);
    // GPU 5: its process runs outside any pod
    expect(gpus[5]!.holders).toEqual([expect.stringMatching(/^1 process outside any pod \| uses \d+\.\d GiB$/)]);

    const status = await w.page.$$eval('#status .chip', (chips) => chips.map((c) => c.textContent));
    expect(status).toEqual(expect.arrayContaining(['ready', 'NVML up', 'kubelet up · 9 pods', 'collectors ok']));
    expect(status.find((s) => s?.startsWith('sample '))).toMatch(/^sample \d+\.\d s old$/);
    expect(await w.page.title()).toBe('golden-node · kube-gpu-exporter');
    await w.done();
  });

  it("shows the pods on GPU 4's replicas and on GPU 7's MIG instances, as /api/v1/node has them", async () => {
    const w = await open(demo.url);
    await w.page.waitForSelector('#devices-body tr[data-gpu="7"][data-mig]', { timeout: 20_000 });
    const all = await rows(w.page);
    const gpu4 = all.find((r) => r.gpu === '4' && r.mig === undefined)!;
    expect([...gpu4.holders].sort()).toEqual([
      expect.stringMatching(/^inference\/chat-api-5d8f9-p7m2z \| server \| replica 2 \| 1\/4 GPU \| uses \d+\.\d GiB$/),
      expect.stringMatching(/^inference\/chat-api-5d8f9-x2k4q \| server \| replicas 0, 1 \| 1\/2 GPU \| uses \d+\.\d GiB$/),
      expect.stringMatching(/^notebooks\/jupyter-alice \| notebook \| replica 3 \| 1\/4 GPU \| uses \d+\.\d GiB$/),
    ]);
    const migs = all.filter((r) => r.gpu === '7' && r.mig !== undefined);
    expect(migs.map((r) => r.model)).toEqual(['3g.40gb', '2g.20gb', '1g.10gb', '1g.10gb']);
    expect(migs.map((r) => r.pods)).toEqual([['batch/embed-job-1-8kq2w'], [], ['batch/embed-job-2-4hx9d'], ['batch/embed-job-3-r6t1n']]);
    expect(migs[0]!.holders).toEqual([expect.stringMatching(/^batch\/embed-job-1-8kq2w \| embed \| 3\/7 GPU \| uses \d+\.\d GiB$/)]);
    expect(migs[0]!.memory).toMatch(/^\d+\.\d \/ 39\.5 GiB$/);
    // every device's holders on the page are those of the JSON the page is built from
    const v = await view(demo.url);
    const devices = v.gpus.flatMap((g) => [g, ...g.mig]);
    for (const r of all) {
      const d = devices.find((x) => x.uuid === r.uuid)!;
      expect(r.pods, r.uuid).toEqual([...new Set(d.holders.map((h) => `${h.namespace}/${h.pod}`))]);
    }
    await w.done();
  });

  it('updates itself without a reload when the node changes', async () => {
    const w = await open(demo.url);
    await w.page.waitForSelector('#devices-body tr[data-gpu="0"] td.temp', { timeout: 20_000 });
    await w.page.evaluate(() => {
      (window as unknown as { __sameDocument: boolean }).__sameDocument = true;
    });
    const navigations = w.navigations;
    const temp0 = (): Promise<string> => w.page.$eval('#devices-body tr[data-gpu="0"] td.temp', (td) => td.textContent ?? '');
    expect(await temp0()).not.toBe('93 °C'); // the walk stays within 58-74 °C
    try {
      replaceScenarioFile(demoState.path, `${demoState.text}\ngpu.0.temp_gpu 93\n`);
      await w.page.waitForFunction(() => document.querySelector('#devices-body tr[data-gpu="0"] td.temp')?.textContent === '93 °C', { timeout: 20_000 });
    } finally {
      replaceScenarioFile(demoState.path, demoState.text);
    }
    expect(await w.page.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument)).toBe(true);
    expect(w.navigations).toBe(navigations);
    expect(w.requests.filter((u) => u.endsWith('/api/v1/node')).length).toBeGreaterThan(1);
    await w.done();
  });

  it('shows the GPU lost in the gpu-lost scenario, its Xid and error, while the others keep reporting (behind basic auth)', async () => {
    expect((await fetch(`${lost.url}/api/v1/node`)).status).toBe(401);
    const w = await open(lost.url, ALICE);
    await w.page.waitForSelector('#devices-body tr.lost[data-gpu="3"]', { timeout: 30_000 });
    const v = await view(lost.url, ALICE_HEADER);
    const all = await rows(w.page);
    expect(all.map((r) => [r.gpu, r.lost])).toEqual([['0', false], ['1', false], ['2', false], ['3', true]]);
    const gpu3 = all[3]!;
    expect(gpu3.model).toBe('NVIDIA H100 80GB HBM3');
    expect([gpu3.util, gpu3.memory, gpu3.temp, gpu3.power]).toEqual(['—', '—', '—', '—']);
    const error = v.gpus[3]!.error!;
    expect(error).toMatch(/GPU_IS_LOST|lost/i);
    expect(gpu3.health).toContain('not answering');
    expect(gpu3.health).toContain(error);
    await w.page.waitForFunction(() => document.querySelector('#devices-body tr[data-gpu="3"] td.health')?.textContent?.includes('Xid 79: GPU has fallen off the bus'), { timeout: 20_000 });
    for (const r of all.slice(0, 3)) expect(r.temp, `GPU ${r.gpu}`).toMatch(/^\d+ °C$/);
    const status = await w.page.$$eval('#status .chip', (chips) => chips.map((c) => c.textContent));
    expect(status).toEqual(expect.arrayContaining(['1 GPU not answering', 'kubelet: attribution off']));
    await w.done();
  });
});

// without Chromium the report says why the browser tests did not run
if (!HAVE_CHROMIUM) it.skip(`the node page in Chromium: ${WHY_SKIPPED}`, () => {});
