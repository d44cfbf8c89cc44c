#!/usr/bin/env node
// Builds the simulated libnvidia-ml.so.1 from the C sources in native/sim (every .c file there,
// compiled and linked as one shared object) with the system C compiler.
//   node scripts/build-sim.mjs                       -> native/sim/build/libnvidia-ml.so.1
//   node scripts/build-sim.mjs --omit a,b --out F    -> a variant without symbols a and b (an older driver)
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const simDir = path.join(root, 'native', 'sim');
export const DEFAULT_OUT = path.join(simDir, 'build', 'libnvidia-ml.so.1');

/** The simulator's sources: every .c and .h file under native/sim (outside its build output), sorted. */
function simFiles(ext) {
  return readdirSync(simDir, { recursive: true })
    .filter((f) => f.endsWith(ext) && !f.split(path.sep).includes('build'))
    .sort()
    .map((f) => path.join(simDir, f));
}

/** Exported functions that can be compiled out (every one wrapped in #ifndef KGE_OMIT_<name>, in any .c file). */
export function omittableSymbols() {
  return simFiles('.c').flatMap((f) => [...readFileSync(f, 'utf8').matchAll(/^#ifndef KGE_OMIT_(\w+)$/gm)].map((m) => m[1]));
}

/** The library is newer than every source, header and this script. */
function upToDate(out) {
  try {
    const inputs = [...simFiles('.c'), ...simFiles('.h'), fileURLToPath(import.meta.url)];
    return statSync(out).mtimeMs >= Math.max(...inputs.map((f) => statSync(f).mtimeMs));
  } catch {
    return false;
  }
}

export function buildSim({ omit = [], out = DEFAULT_OUT } = {}) {
  const known = new Set(omittableSymbols());
  const unknown = omit.filter((s) => !known.has(s));
  if (unknown.length) {
    throw new Error(`cannot omit ${unknown.join(', ')}: not an omittable symbol of the simulated NVML (known: ${[...known].join(', ')})`);
  }
  if (upToDate(out)) return out;
  mkdirSync(path.dirname(out), { recursive: true });
  const cc = process.env.CC || 'gcc';
  const args = ['-std=gnu11', '-shared', '-fPIC', '-O2', '-Wall', '-Wextra', '-Werror', '-fvisibility=hidden',
    ...omit.map((s) => `-DKGE_OMIT_${s}`), '-Wl,-soname,libnvidia-ml.so.1', '-o', `${out}.tmp`, ...simFiles('.c'), '-lm', '-lpthread'];
  execFileSync(cc, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  execFileSync('mv', ['-f', `${out}.tmp`, out]);
  return out;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const argv = process.argv.slice(2);
  const opt = (name) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  try {
    const out = buildSim({
      omit: (opt('--omit') ?? '').split(',').map((s) => s.trim()).filter(Boolean),
      out: opt('--out') ? path.resolve(opt('--out')) : DEFAULT_OUT,
    });
    if (argv.includes('--verbose')) process.stdout.write(`${out}\n`);
  } catch (err) {
    process.stderr.write(`build-sim: ${err.message}\n`);
    process.exit(1);
  }
}
