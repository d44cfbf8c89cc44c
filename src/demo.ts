import { configFromArgs, run } from './cli.js';
import { simulatedNode } from './sim/harness.js';

/**
 * `npm run demo [-- --scenario NAME] [exporter flags]`: the exporter on a simulated node
 * (default: 8x H100), on :9400.
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
process.stderr.write(`demo: simulated node ${node.statePath} (library ${node.libraryPath}); open http://localhost:9400/\n`);
await run(configFromArgs(argv));
