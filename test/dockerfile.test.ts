/**
 * The Dockerfile, without a Docker engine: it is linted (dockerfile-utils, the validator behind
 * the VS Code Docker language server), checked against the project (node flags, version,
 * licence, port), and its build is replayed into temporary directories: a stage FROM an
 * earlier stage starts from that stage's replayed filesystem, every COPY as Docker does it
 * (sources from the context filtered by .dockerignore, or from an earlier stage, with their
 * timestamps), every RUN step the test knows (an unknown one fails the test; `npm ci
 * --omit=dev` installs the lockfile's production packages only). Two targets: the product
 * (the default, the last stage), whose ENTRYPOINT answers --help and --version and whose tree
 * holds no simulation, and `demo`, whose ENTRYPOINT serves a simulated node, scraped once.
 */
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync,
} from 'node:fs';
import { builtinModules } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DockerfileParser, type Instruction } from 'dockerfile-ast';
import { validate, ValidationSeverity } from 'dockerfile-utils';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FLAGS } from '../src/config/flags.js';
import { NODE_FLAGS } from '../src/node-flags.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DOCKERFILE = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
const PKG = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  license: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  scripts: Record<string, string>;
};
/** The target `docker build --target demo` builds; the product is the default (last) stage. */
const DEMO_TARGET = 'demo';

interface LockPackage {
  version?: string;
  dev?: boolean;
  optional?: boolean;
  dependencies?: Record<string, string>;
}
interface Lockfile {
  packages: Record<string, LockPackage & { devDependencies?: Record<string, string> }>;
}

// ---------------------------------------------------------------------------------------
// The Dockerfile as stages of instructions
// ---------------------------------------------------------------------------------------

interface Stage {
  index: number;
  name: string | undefined;
  /** FROM's image reference, with ARG defaults substituted (an earlier stage's name for `FROM <stage>`). */
  image: string;
  /** The earlier stage this one is built FROM (it starts with that stage's filesystem and settings). */
  parent: Stage | undefined;
  instructions: Instruction[];
}

const dockerfile = DockerfileParser.parse(DOCKERFILE);
const instructions = dockerfile.getInstructions();

/** ARG defaults declared before the first FROM (usable in FROM lines). */
const globalArgs = new Map<string, string>();
for (const ins of instructions) {
  if (ins.getKeyword() === 'FROM') break;
  if (ins.getKeyword() === 'ARG') {
    const [name, value] = splitOnce(ins.getArgumentsContent() ?? '', '=');
    globalArgs.set(name, value ?? '');
  }
}

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + sep.length)];
}

function substitute(s: string, vars: ReadonlyMap<string, string>): string {
  return s.replace(/\$\{(\w+)\}|\$(\w+)/g, (m, a: string | undefined, b: string | undefined) => vars.get((a ?? b)!) ?? m);
}

const stages: Stage[] = [];
for (const ins of instructions) {
  if (ins.getKeyword() === 'FROM') {
    const args = ins.getArguments().map((a) => a.getValue());
    const asIndex = args.findIndex((a) => a.toUpperCase() === 'AS');
    const image = substitute(args.filter((a) => !a.startsWith('--'))[0]!, globalArgs);
    stages.push({
      index: stages.length,
      name: asIndex >= 0 ? args[asIndex + 1] : undefined,
      image,
      parent: stages.find((st) => st.name === image),
      instructions: [],
    });
  } else if (stages.length) {
    stages.at(-1)!.instructions.push(ins);
  }
}
/** The product: the last stage, which a plain `docker build .` builds. */
const finalStage = stages.at(-1)!;
const demoStage = stages.find((st) => st.name === DEMO_TARGET);

/** A stage and the stages it is built FROM, the base first. */
function lineage(stage: Stage): Stage[] {
  return stage.parent ? [...lineage(stage.parent), stage] : [stage];
}
/** The external image a stage ends up on. */
const baseImage = (stage: Stage): string => lineage(stage)[0]!.image;
/** What a stage's image is made of: its own instructions after those of the stages it is FROM. */
const effective = (stage: Stage): Instruction[] => lineage(stage).flatMap((st) => st.instructions);
/** Every stage a target needs: the stages it is FROM and those it copies from, recursively. */
function needs(stage: Stage): Set<Stage> {
  const out = new Set<Stage>();
  const visit = (st: Stage) => {
    if (out.has(st)) return;
    out.add(st);
    if (st.parent) visit(st.parent);
    for (const ins of st.instructions.filter((i) => i.getKeyword() === 'COPY')) {
      const from = copyFlags(ins).get('from');
      if (from) visit(stageOf(from));
    }
  };
  visit(stage);
  return out;
}

function stageOf(ref: string): Stage {
  const s = stages.find((st) => st.name === ref) ?? (/^\d+$/.test(ref) ? stages[Number(ref)] : undefined);
  if (!s) throw new Error(`COPY --from=${ref}: no such stage (external images are not replayed by this test)`);
  return s;
}

/** ARG defaults of a stage (ARG lines inside it), for LABEL values. */
function stageArgs(stage: Stage): Map<string, string> {
  const vars = new Map(globalArgs);
  for (const ins of stage.instructions.filter((i) => i.getKeyword() === 'ARG')) {
    const [name, value] = splitOnce(ins.getArgumentsContent() ?? '', '=');
    vars.set(name, value ?? globalArgs.get(name) ?? '');
  }
  return vars;
}

/** A target's labels: those of the stages it is FROM, overridden by its own. */
function labels(target: Stage): Map<string, string> {
  const out = new Map<string, string>();
  for (const stage of lineage(target)) {
    const vars = stageArgs(stage);
    for (const ins of stage.instructions.filter((i) => i.getKeyword() === 'LABEL')) {
      for (const p of (ins as unknown as { getProperties(): { getName(): string; getValue(): string | null }[] }).getProperties()) {
        out.set(p.getName(), substitute(p.getValue() ?? '', vars));
      }
    }
  }
  return out;
}

/** The last of a keyword's instructions in a target (inherited from the stages it is FROM). */
const lastOf = (target: Stage, keyword: string): Instruction | undefined => effective(target).filter((i) => i.getKeyword() === keyword).at(-1);
const workdirOf = (target: Stage): string =>
  effective(target)
    .filter((i) => i.getKeyword() === 'WORKDIR')
    .reduce((dir, i) => path.posix.resolve(dir, i.getArgumentsContent()!.trim()), '/');

function jsonForm(ins: Instruction): string[] {
  const json = (ins as unknown as { getJSONStrings?(): { getJSONValue(): string }[] }).getJSONStrings?.() ?? [];
  const content = ins.getArgumentsContent() ?? '';
  if (!content.trim().startsWith('[') || json.length === 0) throw new Error(`${ins.getKeyword()} must use the JSON (exec) form: ${content}`);
  return json.map((s) => s.getJSONValue());
}

function runCommands(stage: Stage, instructions = stage.instructions): string[] {
  return instructions.filter((i) => i.getKeyword() === 'RUN').map((i) => (i.getArgumentsContent() ?? '').replace(/\s+/g, ' ').trim());
}

// ---------------------------------------------------------------------------------------
// .dockerignore (moby patternmatcher semantics: last matching pattern wins; a pattern that
// matches a parent directory matches the file)
// ---------------------------------------------------------------------------------------

interface IgnorePattern {
  exclusion: boolean;
  re: RegExp;
}

function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*' && pattern[i + 1] === '*') {
      i++;
      if (pattern[i + 1] === '/') {
        i++;
        re += '(?:.*/)?';
      } else re += '.*';
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

const ignorePatterns: IgnorePattern[] = existsSync(path.join(ROOT, '.dockerignore'))
  ? readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => {
        const exclusion = l.startsWith('!');
        const p = path.posix.normalize((exclusion ? l.slice(1) : l).trim()).replace(/^\/+/, '').replace(/\/+$/, '');
        return { exclusion, re: globToRegExp(p) };
      })
  : [];

/** Whether a context path (relative, forward slashes) is left out of the build context. */
function ignored(rel: string): boolean {
  const parts = rel.split('/');
  let out = false;
  for (const p of ignorePatterns) {
    let match = p.re.test(rel);
    for (let n = 1; !match && n < parts.length; n++) match = p.re.test(parts.slice(0, n).join('/'));
    if (match) out = !p.exclusion;
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Replaying the build
// ---------------------------------------------------------------------------------------

interface Replayed {
  /** Stage filesystems, one directory each (by stage index). */
  roots: string[];
  workdirs: string[];
  envs: Record<string, string>[];
}

let tmp = '';
const stageRoot = (s: Stage): string => path.join(tmp, `stage-${s.index}`);
const inStage = (s: Stage, p: string): string => path.join(stageRoot(s), p);

function copyPreserving(from: string, to: string, filter?: (src: string) => boolean): void {
  cpSync(from, to, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true, filter });
}

function copyFlags(ins: Instruction): Map<string, string | null> {
  return new Map(
    (ins as unknown as { getFlags(): { getName(): string; getValue(): string | null }[] }).getFlags().map((f) => [f.getName(), f.getValue()]),
  );
}

function replayCopy(stage: Stage, ins: Instruction, workdir: string): void {
  const flags = copyFlags(ins);
  for (const name of flags.keys()) if (!['from', 'chown', 'chmod', 'link'].includes(name)) throw new Error(`COPY --${name} is not replayed by this test`);
  const args = ins.getArguments().map((a) => a.getValue()).filter((a) => !a.startsWith('--'));
  const dest = args.pop()!;
  const from = flags.get('from') ?? undefined;
  const destAbs = path.posix.isAbsolute(dest) ? dest : path.posix.join(workdir, dest);
  const destIsDir = dest.endsWith('/') || args.length > 1;
  for (const src of args) {
    if (/[*?[]/.test(src)) throw new Error(`COPY ${src}: wildcards are not replayed by this test`);
    let srcPath: string;
    let filter: ((p: string) => boolean) | undefined;
    if (from !== undefined) {
      const other = stageOf(from);
      if (other.index >= stage.index) throw new Error(`COPY --from=${from} in stage ${stage.index}: not an earlier stage`);
      srcPath = inStage(other, path.posix.isAbsolute(src) ? src : path.posix.join('/', src));
      if (!existsSync(srcPath) && !lstatSync(srcPath, { throwIfNoEntry: false })) {
        throw new Error(`COPY --from=${from} ${src}: stage ${from} produced no such path`);
      }
    } else {
      const rel = path.posix.normalize(src).replace(/\/+$/, '');
      srcPath = path.join(ROOT, rel);
      if (!existsSync(srcPath)) throw new Error(`COPY ${src}: not in the repository`);
      if (ignored(rel)) throw new Error(`COPY ${src}: left out of the build context by .dockerignore`);
      filter = (p) => !ignored(path.relative(ROOT, p).split(path.sep).join('/'));
    }
    const st = lstatSync(srcPath);
    const target = inStage(stage, destAbs);
    if (st.isSymbolicLink()) {
      // Only the node_modules link of the replayed `npm ci`: link it again rather than copy
      // the whole tree.
      mkdirSync(path.dirname(target.replace(/\/+$/, '')), { recursive: true });
      symlinkSync(readlinkSync(srcPath), target.replace(/\/+$/, ''));
    } else if (st.isDirectory()) {
      mkdirSync(target, { recursive: true });
      copyPreserving(srcPath, target, filter);
    } else {
      const file = destIsDir ? path.join(target, path.basename(srcPath)) : target;
      mkdirSync(path.dirname(file), { recursive: true });
      copyPreserving(srcPath, file);
    }
  }
}

/** The RUN steps this test knows; anything else fails (teach it the new step). */
function replayRun(stage: Stage, command: string, workdir: string): void {
  const cwd = inStage(stage, workdir);
  const env = {
    ...process.env,
    PATH: [path.join(cwd, 'node_modules', '.bin'), path.dirname(process.execPath), process.env.PATH].join(path.delimiter),
  };
  for (const step of command.split(' && ').map((s) => s.trim())) {
    if (/^npm ci( |$)/.test(step)) {
      // The registry is not replayed: the repository's installed packages stand in, all of
      // them, or with --omit=dev the lockfile's production packages only (one link each).
      expect(step, 'npm ci must not run install scripts before the sources are copied').toContain('--ignore-scripts');
      const flags = step.split(/\s+/).slice(2);
      for (const f of flags) expect(['--ignore-scripts', '--omit=dev'], `RUN ${step}: flag ${f} is not replayed`).toContain(f);
      if (flags.includes('--omit=dev')) installProduction(cwd);
      else symlinkSync(path.join(ROOT, 'node_modules'), path.join(cwd, 'node_modules'));
    } else if (step === 'npm cache clean --force') {
      // nothing cached here
    } else if (/^rm -rf /.test(step)) {
      const paths = step.slice('rm -rf '.length).split(/\s+/);
      // Only files of the base image (npm, yarn) are removed; none of them exists in the replay.
      for (const p of paths) expect(p, `RUN ${step}`).toMatch(/^\/(usr\/local|opt)\//);
    } else if (/^npm run [\w:-]+$/.test(step)) {
      const script = step.slice('npm run '.length);
      const scripts = (JSON.parse(readFileSync(path.join(cwd, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
      expect(scripts[script], `npm run ${script}: no such script`).toBeDefined();
      execFileSync('sh', ['-c', scripts[script]!], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    } else if (/^node /.test(step)) {
      execFileSync('sh', ['-c', step], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    } else if (/^mkdir -p /.test(step)) {
      for (const p of step.split(/\s+/).slice(2)) mkdirSync(inWorkdir(cwd, p, step), { recursive: true });
    } else if (/^mv /.test(step)) {
      // mv SRC... DIR/: paths in the WORKDIR, no wildcards; a missing source fails, as mv does.
      const args = step.split(/\s+/).slice(1);
      expect(args.length, `RUN ${step}`).toBeGreaterThanOrEqual(2);
      const dest = inWorkdir(cwd, args.pop()!, step);
      expect(statSync(dest).isDirectory(), `RUN ${step}: the destination is a directory`).toBe(true);
      for (const src of args) {
        const from = inWorkdir(cwd, src, step);
        expect(lstatSync(from, { throwIfNoEntry: false }), `RUN ${step}: no ${src}`).toBeDefined();
        renameSync(from, path.join(dest, path.basename(from)));
      }
    } else {
      throw new Error(`RUN step not replayed by test/dockerfile.test.ts: ${step}`);
    }
  }
}

/** A relative path of a RUN step, inside the WORKDIR (the replay writes nowhere else). */
function inWorkdir(cwd: string, p: string, step: string): string {
  expect(p, `RUN ${step}: ${p} is not a plain relative path`).toMatch(/^(?!\/)(?!.*(?:^|\/)\.\.(?:\/|$))[\w.@/-]+$/);
  return path.join(cwd, p);
}

/**
 * `npm ci --omit=dev` from the stage's package-lock.json: every package the lockfile does not
 * mark `dev` (a development dependency and nothing else's), linked from the repository's
 * node_modules. npm ci refuses a lockfile that does not match package.json: so does this.
 */
function installProduction(cwd: string): void {
  const pkg = JSON.parse(readFileSync(path.join(cwd, 'package.json'), 'utf8')) as typeof PKG;
  const lock = JSON.parse(readFileSync(path.join(cwd, 'package-lock.json'), 'utf8')) as Lockfile;
  expect(lock.packages['']?.dependencies ?? {}, 'package-lock.json is in sync with package.json (dependencies)').toEqual(pkg.dependencies ?? {});
  expect(lock.packages['']?.devDependencies ?? {}, 'package-lock.json is in sync with package.json (devDependencies)').toEqual(pkg.devDependencies ?? {});
  for (const [key, entry] of Object.entries(lock.packages)) {
    const m = /^node_modules\/((?:@[^/]+\/)?[^/]+)$/.exec(key);
    if (!m || entry.dev) continue; // nested packages come with their top-level package's directory
    const installed = path.join(ROOT, key);
    if (!existsSync(installed)) {
      expect(entry.optional, `${key}: a production package that is not installed here`).toBe(true);
      continue; // an optional package of another platform
    }
    mkdirSync(path.dirname(path.join(cwd, key)), { recursive: true });
    symlinkSync(installed, path.join(cwd, key));
  }
  // A dev package nested under a production one would come along with its directory.
  for (const [key, entry] of Object.entries(lock.packages)) {
    const top = /^node_modules\/((?:@[^/]+\/)?[^/]+)\/node_modules\//.exec(key);
    if (top && entry.dev && !lock.packages[`node_modules/${top[1]}`]?.dev) throw new Error(`${key}: a development package inside production package ${top[1]} is not replayed`);
  }
}

function replay(): Replayed {
  const roots: string[] = [];
  const workdirs: string[] = [];
  const envs: Record<string, string>[] = [];
  for (const stage of stages) {
    let workdir = '/';
    let env: Record<string, string> = {};
    if (stage.parent) {
      // FROM an earlier stage: its filesystem, WORKDIR and ENV.
      copyPreserving(stageRoot(stage.parent), stageRoot(stage));
      workdir = workdirs[stage.parent.index]!;
      env = { ...envs[stage.parent.index] };
    } else mkdirSync(stageRoot(stage), { recursive: true });
    for (const ins of stage.instructions) {
      const kw = ins.getKeyword();
      if (kw === 'WORKDIR') {
        workdir = path.posix.resolve(workdir, ins.getArgumentsContent()!.trim());
        mkdirSync(inStage(stage, workdir), { recursive: true });
      } else if (kw === 'COPY') replayCopy(stage, ins, workdir);
      else if (kw === 'RUN') replayRun(stage, (ins.getArgumentsContent() ?? '').replace(/\s+/g, ' ').trim(), workdir);
      else if (kw === 'ENV') {
        const [k, v] = splitOnce(ins.getArgumentsContent()!.trim(), '=');
        env[k] = v ?? '';
      } else if (!['ARG', 'LABEL', 'USER', 'EXPOSE', 'ENTRYPOINT', 'CMD', 'STOPSIGNAL'].includes(kw)) {
        throw new Error(`${kw} is not replayed by test/dockerfile.test.ts`);
      }
    }
    roots.push(stageRoot(stage));
    workdirs.push(workdir);
    envs.push(env);
  }
  return { roots, workdirs, envs };
}

// ---------------------------------------------------------------------------------------

describe('Dockerfile', () => {
  it('passes the linter (dockerfile-utils, every rule an error)', () => {
    const E = ValidationSeverity.ERROR;
    const problems = validate(DOCKERFILE, {
      deprecatedMaintainer: E, directiveCasing: E, emptyContinuationLine: E, instructionCasing: E, instructionCmdMultiple: E,
      instructionEntrypointMultiple: E, instructionHealthcheckMultiple: E, instructionJSONInSingleQuotes: E, instructionWorkdirRelative: E,
    });
    expect(problems.map((d) => `line ${d.range.start.line + 1}: ${d.message}`)).toEqual([]);
  });

  it('is multi-stage and ends on a slim or distroless image of an LTS Node.js (22 or later)', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const image = baseImage(finalStage);
    const m = /^(?:node:(\d+)[\w.-]*-slim|gcr\.io\/distroless\/nodejs(\d+)-debian\d+)(?:@sha256:[0-9a-f]{64})?$/.exec(image);
    expect(m, `final base image ${image}`).not.toBeNull();
    const major = Number(m![1] ?? m![2]);
    expect(major).toBeGreaterThanOrEqual(22);
    expect(major % 2, 'an even (LTS) Node.js line').toBe(0);
    for (const s of stages) if (!s.parent) expect(s.image, `stage ${s.index} base image`).not.toMatch(/:latest$|^[^:@]+$/);
  });

  it('has two targets: the product (the last stage, the default) and `demo`, which the product does not need', () => {
    expect(demoStage, `a stage named ${DEMO_TARGET}`).toBeDefined();
    expect(demoStage).not.toBe(finalStage);
    expect(needs(finalStage).has(demoStage!), 'the product is built without the demo stage').toBe(false);
    // The demo is the product plus the simulation: it is built FROM the stage the product is.
    expect(lineage(demoStage!).slice(0, -1)).toEqual(lineage(finalStage).slice(0, -1));
    expect(baseImage(demoStage!)).toBe(baseImage(finalStage));
    // The header and README say which target to build and run for what.
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    for (const text of [DOCKERFILE, readme]) {
      expect(text).toMatch(/docker build (?:-t \S+ )?\.(?:\s|$)/);
      expect(text).toMatch(new RegExp(`docker build --target ${DEMO_TARGET} -t (\\S+) \\.`));
      const demoTag = new RegExp(`docker build --target ${DEMO_TARGET} -t (\\S+) \\.`).exec(text)![1]!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      expect(text, 'a docker run line for the demo image').toMatch(new RegExp(`docker run [^\\n]*-p 9400:9400 [^\\n]*${demoTag}`));
    }
    expect(readme, 'README no longer runs the demo from the product image').not.toMatch(/--entrypoint node [^\n]*demo\.js/);
  });

  it('has no HEALTHCHECK (Kubernetes probes do that), no ADD, no CMD in either target', () => {
    const keywords = instructions.map((i) => i.getKeyword());
    expect(keywords).not.toContain('HEALTHCHECK');
    expect(keywords).not.toContain('ADD');
    expect(effective(finalStage).map((i) => i.getKeyword())).not.toContain('CMD');
    expect(effective(demoStage!).map((i) => i.getKeyword())).not.toContain('CMD');
  });

  it('ENTRYPOINT runs node with exactly the flags of src/node-flags.ts: dist/src/main.js in the product, dist/src/demo.js in the demo', () => {
    for (const [target, script] of [[finalStage, 'dist/src/main.js'], [demoStage!, 'dist/src/demo.js']] as const) {
      expect(target.instructions.filter((i) => i.getKeyword() === 'ENTRYPOINT').length, `stage ${target.name ?? target.index}: one ENTRYPOINT at most`).toBeLessThanOrEqual(1);
      expect(jsonForm(lastOf(target, 'ENTRYPOINT')!)).toEqual(['node', ...NODE_FLAGS, path.posix.join(workdirOf(target), script)]);
    }
  });

  it('runs as UID 0 and exposes the default listen port', () => {
    for (const target of [finalStage, demoStage!]) {
      const user = lastOf(target, 'USER')?.getArgumentsContent()?.trim();
      expect(user === '0' || user === '0:0' || user === 'root', `USER ${user}`).toBe(true);
      const listen = FLAGS.find((f) => f.flag === '--web.listen-address')!.defaultText;
      const exposed = effective(target).filter((i) => i.getKeyword() === 'EXPOSE').map((i) => i.getArgumentsContent()?.trim());
      expect(exposed).toEqual([listen.slice(listen.lastIndexOf(':') + 1)]);
    }
  });

  it('carries the OCI labels, with the version and licence of package.json', () => {
    for (const target of [finalStage, demoStage!]) {
      const l = labels(target);
      for (const key of ['title', 'description', 'version', 'revision', 'licenses', 'base.name']) {
        expect(l.get(`org.opencontainers.image.${key}`), key).toBeTruthy();
      }
      expect(l.get('org.opencontainers.image.version')).toBe(PKG.version);
      expect(l.get('org.opencontainers.image.licenses')).toBe(PKG.license);
      expect(l.get('org.opencontainers.image.base.name')).toContain(baseImage(target));
    }
    expect(labels(finalStage).get('org.opencontainers.image.title')).toBe('kube-gpu-exporter');
    expect(labels(demoStage!).get('org.opencontainers.image.title')).not.toBe('kube-gpu-exporter');
  });

  it('builds with dev dependencies and ships production dependencies only', () => {
    const all = stages.flatMap((s) => runCommands(s).map((c) => ({ stage: s, c })));
    const builds = all.filter(({ c }) => /\bnpm run build\b/.test(c));
    expect(builds.length).toBeGreaterThan(0);
    const buildStage = builds[0]!.stage;
    expect(runCommands(buildStage).some((c) => /^npm ci\b/.test(c) && !c.includes('--omit=dev'))).toBe(true);
    expect(runCommands(buildStage).join(' ')).toContain('npm run build:sim');
    for (const target of [finalStage, demoStage!]) {
      // The targets install nothing themselves; node_modules comes from a stage that ran
      // `npm ci --omit=dev`.
      expect(runCommands(target, effective(target)).join(' ')).not.toMatch(/\bnpm (ci|install|i)\b/);
      const nm = effective(target).filter((i) => i.getKeyword() === 'COPY' && /node_modules/.test(i.getArgumentsContent() ?? ''));
      expect(nm).toHaveLength(1);
      const from = copyFlags(nm[0]!).get('from');
      expect(from, 'node_modules is copied from another stage').toBeTruthy();
      expect(runCommands(stageOf(from!)).some((c) => /^npm ci\b.*--omit=dev/.test(c))).toBe(true);
    }
  });

  it('@grpc/proto-loader is a development dependency (the fake kubelet encodes with src/sim/podresources-encode.ts)', () => {
    expect(PKG.dependencies).not.toHaveProperty('@grpc/proto-loader');
    expect(PKG.devDependencies).toHaveProperty('@grpc/proto-loader');
  });

  it('.dockerignore keeps local build output and dependencies out of the context', () => {
    for (const p of ['node_modules', 'node_modules/koffi/index.js', 'dist', 'dist/src/main.js', 'native/sim/build/libnvidia-ml.so.1', '.git', 'test/dockerfile.test.ts', 'proto/podresources-v1.proto']) {
      expect(ignored(p), p).toBe(true);
    }
    for (const p of ['package.json', 'package-lock.json', 'src/main.ts', 'native/sim/nvml_sim.c', 'scenarios/h100x8.sim']) expect(ignored(p), p).toBe(false);
  });
});

describe('the images (the Dockerfile replayed without Docker)', () => {
  let layout: Replayed;
  /** /app of the product and of the demo target. */
  let app = '';
  let demoApp = '';

  beforeAll(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'kge-docker-'));
    layout = replay();
    app = path.join(layout.roots[finalStage.index]!, layout.workdirs[finalStage.index]!);
    demoApp = path.join(layout.roots[demoStage!.index]!, layout.workdirs[demoStage!.index]!);
  }, 120_000);

  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  /** A target's ENTRYPOINT, with node as this node and the image's paths under the replayed root. */
  function entrypoint(target: Stage): [string, string[]] {
    const ep = jsonForm(lastOf(target, 'ENTRYPOINT')!);
    const root = layout.roots[target.index]!;
    return [process.execPath, ep.slice(1).map((a) => (a.startsWith('/') ? path.join(root, a) : a))];
  }

  function runEntrypoint(extra: string[]): string {
    const [cmd, args] = entrypoint(finalStage);
    return execFileSync(cmd, [...args, ...extra], { cwd: app, env: { ...process.env, ...layout.envs[finalStage.index] }, encoding: 'utf8', timeout: 15_000 });
  }

  /** Every file and link under a directory (links are not followed), relative to it. */
  const walk = (d: string, base = d): string[] =>
    readdirSync(d, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(path.join(d, e.name), base) : [path.relative(base, path.join(d, e.name)).split(path.sep).join('/')],
    );

  it('the product holds the compiled exporter and production dependencies, and nothing else', () => {
    expect(readdirSync(app).sort()).toEqual(['dist', 'node_modules', 'package.json']);
    expect(readdirSync(path.join(app, 'dist'))).toEqual(['src']);
    expect(existsSync(path.join(app, 'dist/src/main.js'))).toBe(true);
    expect(walk(path.join(app, 'dist')).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
  });

  it('the product holds no simulation: no simulated library, scenario, simulator source or script, no src/sim, no demo', () => {
    const root = layout.roots[finalStage.index]!;
    const files = walk(root);
    const simulation = files.filter(
      (f) =>
        /(?:^|\/)libnvidia-ml\.so/.test(f) ||
        /\.sim$/.test(f) ||
        /\.pods\.json$/.test(f) ||
        /(?:^|\/)nvml_sim[^/]*\.[ch]$/.test(f) ||
        /(?:^|\/)build-sim\.mjs$/.test(f) ||
        /(?:^|\/)dist\/src\/sim\//.test(f) ||
        /(?:^|\/)dist\/src\/demo\.js/.test(f) ||
        /(?:^|\/)(?:native\/sim|scenarios|proto)\//.test(f),
    );
    expect(simulation).toEqual([]);
    expect(files.length).toBeGreaterThan(10);
  });

  it("the product's node_modules: the lockfile's production packages only; @grpc/proto-loader only as @grpc/grpc-js's own dependency", () => {
    const lock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as Lockfile;
    const nm = path.join(app, 'node_modules');
    const installed = readdirSync(nm).flatMap((e) => (e.startsWith('@') ? readdirSync(path.join(nm, e)).map((s) => `${e}/${s}`) : [e]));
    for (const name of installed) expect(lock.packages[`node_modules/${name}`]?.dev, `${name} is a production package`).not.toBe(true);
    for (const dev of Object.keys(PKG.devDependencies)) {
      if (!lock.packages[`node_modules/${dev}`]?.dev) continue; // also something production needs
      expect(installed, `development dependency ${dev}`).not.toContain(dev);
    }
    for (const name of ['typescript', 'vitest', 'tsx', 'dockerfile-ast']) expect(installed).not.toContain(name);
    for (const name of Object.keys(PKG.dependencies)) expect(installed).toContain(name);
    // @grpc/grpc-js depends on @grpc/proto-loader (for its channelz and ORCA services, loaded
    // only when a server adds them), so npm installs it with production dependencies; nothing
    // of the product imports it (the compiled imports are checked below).
    const needers = Object.entries(lock.packages)
      .filter(([k, e]) => k && !e.dev && e.dependencies && '@grpc/proto-loader' in e.dependencies)
      .map(([k]) => k);
    expect(needers).toEqual(['node_modules/@grpc/grpc-js']);
  });

  it('the compiled code imports only production dependencies, Node.js built-ins and files it ships (both targets)', () => {
    const builtins = new Set(builtinModules);
    for (const dir of [app, demoApp]) {
      const bad: string[] = [];
      for (const rel of walk(path.join(dir, 'dist')).filter((f) => f.endsWith('.js'))) {
        const file = path.join(dir, 'dist', rel);
        const code = readFileSync(file, 'utf8');
        for (const m of code.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"]([^'"]+)['"]/g)) {
          const spec = m[1]!;
          if (spec.startsWith('.')) {
            if (!existsSync(path.resolve(path.dirname(file), spec))) bad.push(`${path.relative(dir, file)}: ${spec} (not in the image)`);
            continue;
          }
          if (spec.startsWith('node:') || builtins.has(spec)) continue;
          const pkg = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
          if (!(pkg in PKG.dependencies)) bad.push(`${path.relative(dir, file)}: ${spec}`);
        }
      }
      expect(bad, `${path.relative(tmp, dir)}: imports of packages that are not production dependencies (the image has no others), or of files it lacks`).toEqual([]);
    }
  });

  it('the product ENTRYPOINT answers --help and --version', () => {
    const help = runEntrypoint(['--help']);
    expect(help).toContain('Usage: kube-gpu-exporter');
    for (const f of FLAGS) expect(help).toContain(f.flag);
    expect(runEntrypoint(['--version']).trim()).toBe(`kube-gpu-exporter ${PKG.version}`);
  });

  it('the demo is the product plus the simulation: every file of the product, unchanged, and the simulation', () => {
    const product = walk(app);
    const demo = new Set(walk(demoApp));
    for (const f of product) {
      expect(demo.has(f), f).toBe(true);
      const a = lstatSync(path.join(app, f));
      const b = lstatSync(path.join(demoApp, f));
      if (a.isSymbolicLink()) expect(readlinkSync(path.join(demoApp, f)), f).toBe(readlinkSync(path.join(app, f)));
      else expect(b.size, f).toBe(a.size);
    }
    expect(readdirSync(demoApp).sort()).toEqual(['dist', 'native', 'node_modules', 'package.json', 'scenarios', 'scripts']);
    for (const f of ['dist/src/demo.js', 'dist/src/sim/harness.js', 'dist/src/sim/fake-kubelet.js', 'dist/src/sim/podresources-encode.js', 'scripts/build-sim.mjs', 'scenarios/h100x8.sim', 'native/sim/build/libnvidia-ml.so.1']) {
      expect(existsSync(path.join(demoApp, f)), f).toBe(true);
    }
    // native/sim whole: every file of the simulator's source in the repository.
    const sources = walk(path.join(ROOT, 'native/sim')).filter((f) => !f.startsWith('build/'));
    expect(sources.length).toBeGreaterThan(0);
    for (const f of sources) expect(existsSync(path.join(demoApp, 'native/sim', f)), `native/sim/${f}`).toBe(true);
  });

  it('every scenario of the demo has its simulated library prebuilt (no compiler in the image)', () => {
    const harness = path.join(demoApp, 'dist/src/sim/harness.js');
    const script = `import { readdirSync } from 'node:fs';
      const { simulatedNode, repoRoot } = await import(${JSON.stringify(harness)});
      const out = [];
      for (const f of readdirSync(repoRoot() + '/scenarios')) if (f.endsWith('.sim')) out.push(simulatedNode(f.slice(0, -4)).libraryPath);
      console.log(JSON.stringify({ root: repoRoot(), out }));`;
    const before = statSync(path.join(demoApp, 'native/sim/build/libnvidia-ml.so.1')).mtimeMs;
    const r = JSON.parse(
      execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: demoApp, env: { ...process.env, CC: 'false' }, encoding: 'utf8' }),
    ) as { root: string; out: string[] };
    expect(r.root).toBe(demoApp);
    expect(r.out.length).toBeGreaterThan(1);
    for (const lib of r.out) expect(lib.startsWith(demoApp) && existsSync(lib), lib).toBe(true);
    expect(statSync(path.join(demoApp, 'native/sim/build/libnvidia-ml.so.1')).mtimeMs).toBe(before);
  });

  it('the demo target ENTRYPOINT serves a simulated node with its pods; /metrics, /healthz and /readyz answer', async () => {
    const [cmd, args] = entrypoint(demoStage!);
    const child = spawn(cmd, [...args, '--web.listen-address=127.0.0.1:0'], {
      cwd: demoApp,
      // CC=false: the demo must find its library prebuilt, as in the image (no gcc there).
      env: { ...process.env, ...layout.envs[demoStage!.index], CC: 'false', NODE_NAME: 'image-test-node' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    try {
      const port = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`demo did not start in 15 s\nstdout: ${out}\nstderr: ${err}`)), 15_000);
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          for (const line of out.split('\n')) {
            const m = /"port":(\d+).*serving \/metrics|serving \/metrics.*"port":(\d+)/.exec(line);
            if (m) {
              clearTimeout(timer);
              resolve(Number(m[1] ?? m[2]));
            }
          }
        });
        child.once('exit', (code) => reject(new Error(`demo exited ${code}\nstdout: ${out}\nstderr: ${err}`)));
      });
      const base = `http://127.0.0.1:${port}`;
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      let ready = 0;
      for (let i = 0; i < 50 && ready !== 200; i++) {
        ready = (await fetch(`${base}/readyz`)).status;
        if (ready !== 200) await new Promise((r) => setTimeout(r, 100));
      }
      expect(ready).toBe(200);
      // The first samples may come before the first kubelet refresh: wait for pod labels.
      let body = '';
      for (let i = 0; i < 50 && !/\bpod="[^"]+"/.test(body); i++) {
        const res = await fetch(`${base}/metrics`);
        expect(res.status).toBe(200);
        body = await res.text();
        if (!/\bpod="[^"]+"/.test(body)) await new Promise((r) => setTimeout(r, 100));
      }
      expect(body).toMatch(/^DCGM_FI_DEV_GPU_TEMP\{.*Hostname="image-test-node"/m);
      expect(body).toMatch(/\bpod="[^"]+"/);
      expect(body).toMatch(/^kube_gpu_exporter_nvml_up 1$/m);
      expect(body).toMatch(/^kube_gpu_exporter_kubelet_up 1$/m);
    } finally {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await once(child, 'exit');
      }
    }
    expect(child.exitCode, err).toBe(0);
  });
});
