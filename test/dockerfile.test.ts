/**
 * The Dockerfile, without a Docker engine: it is linted (dockerfile-utils, the validator behind
 * the VS Code Docker language server), checked against the project (node flags, version,
 * licence, port), and its build is replayed into a temporary directory: every COPY as Docker
 * does it (sources from the context filtered by .dockerignore, or from an earlier stage, with
 * their timestamps), every RUN step the test knows (an unknown one fails the test). The
 * ENTRYPOINT then runs in the layout the final stage produced: --help, --version, and the
 * demo on a simulated node, scraped once.
 */
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync,
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
  scripts: Record<string, string>;
};

// ---------------------------------------------------------------------------------------
// The Dockerfile as stages of instructions
// ---------------------------------------------------------------------------------------

interface Stage {
  index: number;
  name: string | undefined;
  /** FROM's image reference, with ARG defaults substituted. */
  image: string;
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
    stages.push({
      index: stages.length,
      name: asIndex >= 0 ? args[asIndex + 1] : undefined,
      image: substitute(args.filter((a) => !a.startsWith('--'))[0]!, globalArgs),
      instructions: [],
    });
  } else if (stages.length) {
    stages.at(-1)!.instructions.push(ins);
  }
}
const finalStage = stages.at(-1)!;

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

function labels(stage: Stage): Map<string, string> {
  const vars = stageArgs(stage);
  const out = new Map<string, string>();
  for (const ins of stage.instructions.filter((i) => i.getKeyword() === 'LABEL')) {
    for (const p of (ins as unknown as { getProperties(): { getName(): string; getValue(): string | null }[] }).getProperties()) {
      out.set(p.getName(), substitute(p.getValue() ?? '', vars));
    }
  }
  return out;
}

function jsonForm(ins: Instruction): string[] {
  const json = (ins as unknown as { getJSONStrings?(): { getJSONValue(): string }[] }).getJSONStrings?.() ?? [];
  const content = ins.getArgumentsContent() ?? '';
  if (!content.trim().startsWith('[') || json.length === 0) throw new Error(`${ins.getKeyword()} must use the JSON (exec) form: ${content}`);
  return json.map((s) => s.getJSONValue());
}

function runCommands(stage: Stage): string[] {
  return stage.instructions.filter((i) => i.getKeyword() === 'RUN').map((i) => (i.getArgumentsContent() ?? '').replace(/\s+/g, ' ').trim());
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
  /** Stage filesystems, one directory each. */
  roots: string[];
  workdirs: string[];
  env: Record<string, string>;
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
      // The registry is not replayed: the repository's installed packages stand in (that the
      // final image needs production dependencies only is checked on the compiled imports).
      expect(step, 'npm ci must not run install scripts before the sources are copied').toContain('--ignore-scripts');
      symlinkSync(path.join(ROOT, 'node_modules'), path.join(cwd, 'node_modules'));
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
    } else {
      throw new Error(`RUN step not replayed by test/dockerfile.test.ts: ${step}`);
    }
  }
}

function replay(): Replayed {
  const roots: string[] = [];
  const workdirs: string[] = [];
  let env: Record<string, string> = {};
  for (const stage of stages) {
    mkdirSync(stageRoot(stage), { recursive: true });
    let workdir = '/';
    env = {};
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
  }
  return { roots, workdirs, env };
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
    const m = /^(?:node:(\d+)[\w.-]*-slim|gcr\.io\/distroless\/nodejs(\d+)-debian\d+)(?:@sha256:[0-9a-f]{64})?$/.exec(finalStage.image);
    expect(m, `final base image ${finalStage.image}`).not.toBeNull();
    const major = Number(m![1] ?? m![2]);
    expect(major).toBeGreaterThanOrEqual(22);
    expect(major % 2, 'an even (LTS) Node.js line').toBe(0);
    for (const s of stages) expect(s.image, `stage ${s.index} base image`).not.toMatch(/:latest$|^[^:@]+$/);
  });

  it('has no HEALTHCHECK (Kubernetes probes do that), no ADD, no CMD in the final stage', () => {
    const keywords = instructions.map((i) => i.getKeyword());
    expect(keywords).not.toContain('HEALTHCHECK');
    expect(keywords).not.toContain('ADD');
    expect(finalStage.instructions.map((i) => i.getKeyword())).not.toContain('CMD');
  });

  it('ENTRYPOINT runs node with exactly the flags of src/node-flags.ts and dist/src/main.js', () => {
    const eps = finalStage.instructions.filter((i) => i.getKeyword() === 'ENTRYPOINT');
    expect(eps).toHaveLength(1);
    const workdir = finalStage.instructions.filter((i) => i.getKeyword() === 'WORKDIR').at(-1)?.getArgumentsContent()?.trim() ?? '/';
    expect(jsonForm(eps[0]!)).toEqual(['node', ...NODE_FLAGS, path.posix.join(workdir, 'dist/src/main.js')]);
  });

  it('runs as UID 0 and exposes the default listen port', () => {
    const user = finalStage.instructions.filter((i) => i.getKeyword() === 'USER').at(-1)?.getArgumentsContent()?.trim();
    expect(user === '0' || user === '0:0' || user === 'root', `USER ${user}`).toBe(true);
    const listen = FLAGS.find((f) => f.flag === '--web.listen-address')!.defaultText;
    const exposed = finalStage.instructions.filter((i) => i.getKeyword() === 'EXPOSE').map((i) => i.getArgumentsContent()?.trim());
    expect(exposed).toEqual([listen.slice(listen.lastIndexOf(':') + 1)]);
  });

  it('carries the OCI labels, with the version and licence of package.json', () => {
    const l = labels(finalStage);
    for (const key of ['title', 'description', 'version', 'revision', 'licenses', 'base.name']) {
      expect(l.get(`org.opencontainers.image.${key}`), key).toBeTruthy();
    }
    expect(l.get('org.opencontainers.image.version')).toBe(PKG.version);
    expect(l.get('org.opencontainers.image.licenses')).toBe(PKG.license);
    expect(l.get('org.opencontainers.image.title')).toBe('kube-gpu-exporter');
    expect(l.get('org.opencontainers.image.base.name')).toContain(finalStage.image);
  });

  it('builds with dev dependencies and ships production dependencies only', () => {
    const all = stages.flatMap((s) => runCommands(s).map((c) => ({ stage: s, c })));
    const builds = all.filter(({ c }) => /\bnpm run build\b/.test(c));
    expect(builds.length).toBeGreaterThan(0);
    const buildStage = builds[0]!.stage;
    expect(runCommands(buildStage).some((c) => /^npm ci\b/.test(c) && !c.includes('--omit=dev'))).toBe(true);
    expect(runCommands(buildStage).join(' ')).toContain('npm run build:sim');
    // The final stage installs nothing itself; its node_modules comes from a stage that ran
    // `npm ci --omit=dev`.
    expect(runCommands(finalStage).join(' ')).not.toMatch(/\bnpm (ci|install|i)\b/);
    const nm = finalStage.instructions.find((i) => i.getKeyword() === 'COPY' && /node_modules/.test(i.getArgumentsContent() ?? ''));
    expect(nm).toBeDefined();
    const from = copyFlags(nm!).get('from');
    expect(from, 'node_modules is copied from another stage').toBeTruthy();
    expect(runCommands(stageOf(from!)).some((c) => /^npm ci\b.*--omit=dev/.test(c))).toBe(true);
  });

  it('.dockerignore keeps local build output and dependencies out of the context', () => {
    for (const p of ['node_modules', 'node_modules/koffi/index.js', 'dist', 'dist/src/main.js', 'native/sim/build/libnvidia-ml.so.1', '.git']) {
      expect(ignored(p), p).toBe(true);
    }
    for (const p of ['package.json', 'package-lock.json', 'src/main.ts', 'proto/podresources-v1.proto']) expect(ignored(p), p).toBe(false);
  });
});

describe('the image layout (the Dockerfile replayed without Docker)', () => {
  let layout: Replayed;
  let app = '';

  beforeAll(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'kge-docker-'));
    layout = replay();
    const workdir = layout.workdirs.at(-1)!;
    app = path.join(layout.roots.at(-1)!, workdir);
  }, 120_000);

  afterAll(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  /** The ENTRYPOINT, with node as this node and the image's paths under the replayed root. */
  function entrypoint(): [string, string[]] {
    const ep = jsonForm(finalStage.instructions.find((i) => i.getKeyword() === 'ENTRYPOINT')!);
    const root = layout.roots.at(-1)!;
    return [process.execPath, ep.slice(1).map((a) => (a.startsWith('/') ? path.join(root, a) : a))];
  }

  function runEntrypoint(extra: string[]): string {
    const [cmd, args] = entrypoint();
    return execFileSync(cmd, [...args, ...extra], { cwd: app, env: { ...process.env, ...layout.env }, encoding: 'utf8', timeout: 15_000 });
  }

  it('holds the compiled exporter, its proto, the demo and production dependencies, and nothing else', () => {
    expect(readdirSync(app).sort()).toEqual(['dist', 'native', 'node_modules', 'package.json', 'proto', 'scenarios', 'scripts']);
    expect(readdirSync(path.join(app, 'dist'))).toEqual(['src']);
    expect(existsSync(path.join(app, 'proto/podresources-v1.proto'))).toBe(true);
    expect(existsSync(path.join(app, 'native/sim/build/libnvidia-ml.so.1'))).toBe(true);
    const walk = (d: string): string[] =>
      readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]));
    expect(walk(path.join(app, 'dist')).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'))).toEqual([]);
  });

  it('the compiled code imports only production dependencies and Node.js built-ins', () => {
    const builtins = new Set(builtinModules);
    const walk = (d: string): string[] =>
      readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : e.name.endsWith('.js') ? [path.join(d, e.name)] : []));
    const bad: string[] = [];
    for (const file of walk(path.join(app, 'dist'))) {
      const code = readFileSync(file, 'utf8');
      for (const m of code.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"]([^'"]+)['"]/g)) {
        const spec = m[1]!;
        if (spec.startsWith('.') || spec.startsWith('node:') || builtins.has(spec)) continue;
        const pkg = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
        if (!(pkg in PKG.dependencies)) bad.push(`${path.relative(app, file)}: ${spec}`);
      }
    }
    expect(bad, 'imports of packages that are not production dependencies (the image has no others)').toEqual([]);
  });

  it('the ENTRYPOINT answers --help and --version', () => {
    const help = runEntrypoint(['--help']);
    expect(help).toContain('Usage: kube-gpu-exporter');
    for (const f of FLAGS) expect(help).toContain(f.flag);
    expect(runEntrypoint(['--version']).trim()).toBe(`kube-gpu-exporter ${PKG.version}`);
  });

  it('every scenario of the demo has its simulated library prebuilt (no compiler in the image)', () => {
    const harness = path.join(app, 'dist/src/sim/harness.js');
    const script = `import { readdirSync } from 'node:fs';
      const { simulatedNode, repoRoot } = await import(${JSON.stringify(harness)});
      const out = [];
      for (const f of readdirSync(repoRoot() + '/scenarios')) if (f.endsWith('.sim')) out.push(simulatedNode(f.slice(0, -4)).libraryPath);
      console.log(JSON.stringify({ root: repoRoot(), out }));`;
    const before = statSync(path.join(app, 'native/sim/build/libnvidia-ml.so.1')).mtimeMs;
    const r = JSON.parse(
      execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: app, env: { ...process.env, CC: 'false' }, encoding: 'utf8' }),
    ) as { root: string; out: string[] };
    expect(r.root).toBe(app);
    expect(r.out.length).toBeGreaterThan(1);
    for (const lib of r.out) expect(lib.startsWith(app) && existsSync(lib), lib).toBe(true);
    expect(statSync(path.join(app, 'native/sim/build/libnvidia-ml.so.1')).mtimeMs).toBe(before);
  });

  it('`node dist/src/demo.js` serves a simulated node with its pods; /metrics, /healthz and /readyz answer', async () => {
    const child = spawn(process.execPath, [...NODE_FLAGS, 'dist/src/demo.js', '--web.listen-address=127.0.0.1:0'], {
      cwd: app,
      // CC=false: the demo must find its library prebuilt, as in the image (no gcc there).
      env: { ...process.env, ...layout.env, CC: 'false', NODE_NAME: 'image-test-node' },
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
