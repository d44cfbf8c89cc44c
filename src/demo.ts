import { rmSync } from 'node:fs';
import path from 'node:path';
import { configFromArgs, run } from './cli.js';
import { simulatedNode } from './sim/harness.js';
import { startSimulatedPods } from './sim/simulated-pods.js';

/**
 * `npm run demo [-- --scenario NAME] [exporter flags]`: the exporter on a simulated node
 * (default: 8x H100) with its pods (a fake kubelet and host process tree), on :9400.
 */
const argv = process.argv.slice(2);
let scenario = process.env.KGE_DEMO_SCENARIO ?? 'h100x8';
const i = argv.findIndex((a) => a === '--scenario' || a.startsWith('--scenario='));
if (i >= 0) {
  const a = argv[i]!;
  scenario = a.includes('=') ? a.slice(a.indexOf('=') + 1) : (argv[i + 1] ?? '');
  argv.splice(i, a.includes('=') ? 1 : 2);
}
const node = simulatedNode(scenario);
process.env.KGE_SIM_STATE = node.statePath;
process.env.KGE_NVML_LIBRARY = node.libraryPath;
const pods = await startSimulatedPods(node.statePath);
const dra = pods.resourceApi ? `, ResourceSlices of node ${pods.nodeName} on a fake API server at ${pods.resourceApi.url}` : '';
process.stderr.write(
  `demo: simulated node ${node.statePath} (library ${node.libraryPath}), ${pods.scenario.pods.length} pods on a fake kubelet at ${pods.kubelet.socketPath}${dra}; open http://localhost:9400/\n`,
);
process.once('exit', () => {
  pods.host.cleanup();
  rmSync(path.dirname(path.dirname(pods.kubelet.socketPath)), { recursive: true, force: true });
});
await run(configFromArgs([...pods.flags, ...argv]));
