/**
 * `npm run screenshot`: docs/node-page.png, the node page of the demo (the simulated 8x H100
 * node with its pods, as `npm run demo` serves it) in the system Chromium (puppeteer-core; no
 * browser download). CHROMIUM_PATH overrides /usr/bin/chromium; `--out FILE` the output.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import puppeteer from 'puppeteer-core';
import { parseFlags } from '../src/config/flags.js';
import { Exporter } from '../src/exporter.js';
import { repoRoot, simulatedNode } from '../src/sim/harness.js';
import { startSimulatedPods } from '../src/sim/simulated-pods.js';
import type { NodeView } from '../src/view/node-view.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const argv = process.argv.slice(2);
const outAt = argv.indexOf('--out');
const out = outAt >= 0 && argv[outAt + 1] ? path.resolve(argv[outAt + 1]!) : path.join(repoRoot(), 'docs', 'node-page.png');
/** Seconds of busy-seconds readings before the picture, so utilization is an average, not one step. */
const WINDOW_SECONDS = 15;

if (!existsSync(CHROMIUM)) {
  process.stderr.write(`node-page-screenshot: no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)\n`);
  process.exit(1);
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const node = simulatedNode('h100x8');
process.env.KGE_SIM_STATE = node.statePath;
const pods = await startSimulatedPods(node.statePath, { nodeName: 'gpu-node-01' });
const parsed = parseFlags([...pods.flags, '--web.listen-address=127.0.0.1:0', `--nvml.library=${node.libraryPath}`, '--node-name=gpu-node-01']);
if (parsed.kind !== 'run') throw new Error('unexpected flags result');
const exporter = new Exporter({ config: parsed.config, logger: pino({ level: 'warn' }) });
const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
try {
  const { port } = await exporter.start();
  const url = `http://127.0.0.1:${port}/`;
  await until(
    `${WINDOW_SECONDS} s of utilization and the kubelet's pods`,
    async () => {
      const view = (await (await fetch(`${url}api/v1/node`)).json()) as NodeView;
      const ok = view.exporter.kubelet?.up && view.gpus.length === 8 && (view.gpus[0]?.utilizationWindowSeconds ?? 0) >= WINDOW_SECONDS;
      return ok ? view : undefined;
    },
    WINDOW_SECONDS * 1000 + 30_000,
  );
  const page = await browser.newPage();
  await page.setViewport({ width: 1680, height: 900, deviceScaleFactor: 1 });
  await page.emulateMediaFeatures([{ name: 'prefers-color-scheme', value: 'light' }]);
  await page.goto(url, { waitUntil: 'load' });
  await page.waitForSelector('#devices-body tr[data-gpu="7"][data-mig]');
  await page.screenshot({ path: out as `${string}.png`, fullPage: true });
  process.stdout.write(`wrote ${path.relative(process.cwd(), out)}\n`);
} finally {
  await browser.close();
  await exporter.stop();
  await pods.stop();
}
