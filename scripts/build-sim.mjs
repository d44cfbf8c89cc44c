#!/usr/bin/env node
// Builds the simulated NVML library (native/sim/nvml_sim.c) with the system C compiler.
//
//   node scripts/build-sim.mjs                        -> native/sim/build/libnvidia-ml.so.1
//   node scripts/build-sim.mjs --omit a,b [--out F]   -> a variant without exported functions a and b
//                                                       (default out: native/sim/build/omit-<sorted names joined by _>/libnvidia-ml.so.1)
//   node scripts/build-sim.mjs --selftest             -> build, then run native/sim/selftest.c against every scenario
//
// A build is skipped when the output is newer than the C source and was built with the same
// omit list (recorded in <out>.omit beside it). Output is written to a temporary file and renamed,
// so concurrent builds and running processes never see a half-written library.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const simDir = path.join(root, 'native', 'sim');
const source = path.join(simDir, 'nvml_sim.c');
export const DEFAULT_OUT = path.join(simDir, 'build', 'libnvidia-ml.so.1');

/** Exported functions that can be compiled out (each is wrapped in `#ifndef KGE_OMIT_<name>`). */
export function omittableSymbols() {
  return [...readFileSync(source, 'utf8').matchAll(/^#ifndef KGE_OMIT_(\w+)\s*$/gm)].map((m) => m[1]);
}

/** Where a variant without `omit` is built by default (the path src/sim/harness.ts uses). */
export function variantPath(omit) {
  if (!omit.length) return DEFAULT_OUT;
  return path.join(simDir, 'build', `omit-${[...omit].sort().join('_')}`, 'libnvidia-ml.so.1');
}

function upToDate(out, stamp) {
  try {
    if (statSync(out).mtimeMs <= statSync(source).mtimeMs) return false;
    return readFileSync(`${out}.omit`, 'utf8') === stamp;
  } catch {
    return false;
  }
}

/**
 * Builds the library (or a variant lacking the `omit` functions) and returns its path.
 * Throws with gcc's output on a compile error, or on an unknown symbol name in `omit`.
 */
export async function buildSim({ omit = [], out } = {}) {
  const names = [...new Set(omit.map((s) => s.trim()).filter(Boolean))].sort();
  const known = new Set(omittableSymbols());
  const unknown = names.filter((n) => !known.has(n));
  if (unknown.length) {
    throw new Error(
      `cannot omit ${unknown.join(', ')}: not an omittable exported function of ${path.relative(root, source)} ` +
        `(omittable: ${[...known].sort().join(', ')})`,
    );
  }
  const target = path.resolve(out ?? variantPath(names));
  const stamp = names.join(',') + '\n';
  if (upToDate(target, stamp)) return target;
  mkdirSync(path.dirname(target), { recursive: true });
  const tmp = `${target}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const args = [
    '-std=gnu11', '-shared', '-fPIC', '-O2', '-Wall', '-Wextra', '-Werror', '-fvisibility=hidden',
    '-Wl,-soname,libnvidia-ml.so.1',
    ...names.map((n) => `-DKGE_OMIT_${n}`),
    '-o', tmp, source, '-lm', '-lpthread',
  ];
  const cc = process.env.CC || 'gcc';
  const r = spawnSync(cc, args, { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    rmSync(tmp, { force: true });
    const output = r.error ? String(r.error.message) : `${r.stdout ?? ''}${r.stderr ?? ''}`;
    const err = new Error(`${cc} failed building ${path.relative(root, target) || target}:\n${output}`);
    err.compilerOutput = output;
    throw err;
  }
  renameSync(tmp, target);
  writeFileSync(`${target}.omit`, stamp);
  return target;
}

function definedSymbols(lib) {
  const out = execFileSync('nm', ['-D', '--defined-only', lib], { encoding: 'utf8' });
  return new Set(out.split('\n').map((l) => l.trim().split(/\s+/)[2]).filter(Boolean));
}

/** Builds the library, a variant, and native/sim/selftest.c, and runs the self-test on every scenario. */
async function selftest() {
  const lib = await buildSim({});
  const all = omittableSymbols();
  const core = ['nvmlInit_v2', 'nvmlShutdown', 'nvmlErrorString', 'nvmlDeviceGetCount_v2', 'nvmlDeviceGetHandleByIndex_v2'];
  const failures = [];
  const check = (ok, what) => {
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
    if (!ok) failures.push(what);
  };

  const syms = definedSymbols(lib);
  const missing = [...core, ...all].filter((s) => !syms.has(s));
  check(missing.length === 0 && all.length === 37, `nm -D lists all ${core.length + all.length} functions${missing.length ? ` (missing ${missing})` : ''}`);
  const extra = [...syms].filter((s) => !s.startsWith('nvml') && !s.startsWith('_'));
  check(extra.length === 0, `no non-NVML symbols exported${extra.length ? ` (${extra.join(', ')})` : ''}`);

  const tmp = mkdtempSync(path.join(os.tmpdir(), 'kge-sim-selftest-'));
  try {
    const omit = ['nvmlDeviceGetMemoryInfo_v2', 'nvmlDeviceGetComputeRunningProcesses_v3', 'nvmlDeviceGetCurrentClocksEventReasons'];
    const variant = await buildSim({ omit, out: path.join(tmp, 'omit', 'libnvidia-ml.so.1') });
    const vs = definedSymbols(variant);
    check(omit.every((s) => !vs.has(s)) && vs.size === syms.size - omit.length, 'the --omit variant lacks exactly the omitted functions');
    try {
      await buildSim({ omit: ['nvmlNoSuchFunction'], out: path.join(tmp, 'x.so') });
      check(false, 'an unknown --omit name is refused');
    } catch (e) {
      check(/nvmlNoSuchFunction/.test(e.message), 'an unknown --omit name is refused');
    }

    const exe = path.join(tmp, 'selftest');
    const cc = process.env.CC || 'gcc';
    const r = spawnSync(cc, ['-std=gnu11', '-O1', '-Wall', '-Wextra', '-Werror', '-o', exe, path.join(simDir, 'selftest.c'), '-ldl', '-lpthread'], { encoding: 'utf8' });
    if (r.status !== 0) {
      process.stderr.write(`${r.stdout}${r.stderr}`);
      check(false, 'selftest.c compiles');
      return failures;
    }
    const scenarios = readdirSync(path.join(root, 'scenarios')).filter((f) => f.endsWith('.sim')).sort();
    const runs = [
      ...scenarios.map((f) => {
        const file = path.join(root, 'scenarios', f);
        const directive = /^#\s*kge-sim-omit:\s*(.+)$/m.exec(readFileSync(file, 'utf8'));
        const useLib = directive ? variant : lib;
        return { what: `scenario ${f}`, args: [useLib, 'scenario', path.basename(f, '.sim'), file] };
      }),
      ...['sizing', 'faults', 'reload', 'parse', 'walk', 'uninit'].map((mode) => ({ what: `synthetic ${mode}`, args: [lib, mode, tmp] })),
    ];
    for (const run of runs) {
      const res = spawnSync(exe, run.args, { encoding: 'utf8', env: { ...process.env, KGE_SIM_STATE: '' } });
      const text = `${res.stdout ?? ''}${res.stderr ?? ''}`.trim();
      if (res.status !== 0 && text) console.log(text.replace(/^/gm, '    '));
      check(res.status === 0, `${run.what}${res.status !== 0 ? ` (exit ${res.status ?? res.signal})` : ''}`);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return failures;
}

function parseArgs(argv) {
  const opts = { omit: [], out: undefined, selftest: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (a.includes('=')) return a.slice(a.indexOf('=') + 1);
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--omit' || a.startsWith('--omit=')) opts.omit.push(...value().split(','));
    else if (a === '--out' || a.startsWith('--out=')) opts.out = value();
    else if (a === '--selftest') opts.selftest = true;
    else if (a === '-h' || a === '--help') {
      console.log('usage: node scripts/build-sim.mjs [--omit sym1,sym2] [--out path/to/libnvidia-ml.so.1] | --selftest');
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  return opts;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  try {
    const opts = parseArgs(process.argv.slice(2));
    if (opts.selftest) {
      const failures = await selftest();
      if (failures.length) {
        console.error(`build-sim: self-test failed (${failures.length}): ${failures.join('; ')}`);
        process.exit(1);
      }
      console.log('build-sim: self-test passed');
    } else {
      const out = await buildSim({ omit: opts.omit, out: opts.out });
      if (!existsSync(out)) throw new Error(`no output at ${out}`);
    }
  } catch (err) {
    process.stderr.write(`build-sim: ${err.message}\n`);
    process.exit(1);
  }
}
