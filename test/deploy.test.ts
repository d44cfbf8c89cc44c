/**
 * deploy/: the kustomizations are rendered here (resources, components, JSON 6902 patches,
 * images: the kustomize features deploy/ uses; anything else fails the test, and where
 * kubectl is installed the rendering is compared with `kubectl kustomize`), every object is
 * validated against the Kubernetes and prometheus-operator schemas (kubernetes-models) and
 * for unknown fields (the API types of @kubernetes/client-node), and the manifests are checked
 * against the exporter: flags and variables against src/config/flags.ts (parsed as the
 * exporter parses them), mounts against the flag values, probes against the HTTP server,
 * ports, selectors and labels against each other, the image tag against package.json.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import * as monitoringV1 from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import * as appsV1 from 'kubernetes-models/apps/v1';
import * as rbacV1 from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import * as coreV1 from 'kubernetes-models/v1';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { COLLECTORS } from '../src/collectors/index.js';
import { collectorEnv, FLAGS, parseFlags, type Config } from '../src/config/flags.js';
import { createApp } from '../src/http/server.js';
import { loadWebConfig } from '../src/config/web-config.js';
import { makeTestPki } from './support/certs.js';
import { buildDashboardConfigMaps, COMPONENT_DIR, dashboardConfigMaps, DASHBOARDS_JSON_DIR, FOLDER } from '../scripts/build-dashboard-configmaps.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DEPLOY = path.join(ROOT, 'deploy');
const PKG = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };

type Obj = Record<string, any>;

// ---------------------------------------------------------------------------------------
// Rendering kustomizations
// ---------------------------------------------------------------------------------------

function loadYaml(file: string): Obj[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  const out: Obj[] = [];
  for (const d of docs) {
    if (d.errors.length) throw new Error(`${path.relative(ROOT, file)}: ${d.errors.map((e) => e.message).join('; ')}`);
    const v = d.toJS() as unknown;
    if (v !== null && v !== undefined) out.push(v as Obj);
  }
  return out;
}

function kustomizationOf(dir: string): { file: string; k: Obj } {
  for (const name of ['kustomization.yaml', 'kustomization.yml', 'Kustomization']) {
    const file = path.join(dir, name);
    if (existsSync(file)) {
      const docs = loadYaml(file);
      if (docs.length !== 1) throw new Error(`${file}: one document expected`);
      return { file, k: docs[0]! };
    }
  }
  throw new Error(`${path.relative(ROOT, dir)}: no kustomization file`);
}

const KUSTOMIZATION_FIELDS = new Set(['apiVersion', 'kind', 'resources', 'components', 'patches', 'images']);

interface Rendered {
  objects: Obj[];
  /** Every file the rendering read (kustomizations, manifests, patches). */
  files: Set<string>;
}

const groupOf = (apiVersion: string): string => (apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '');
const versionOf = (apiVersion: string): string => apiVersion.slice(apiVersion.indexOf('/') + 1);
const idOf = (o: Obj): string => `${o.apiVersion}/${o.kind}/${o.metadata?.namespace ?? ''}/${o.metadata?.name}`;

function pointer(p: string): string[] {
  if (!p.startsWith('/')) throw new Error(`JSON pointer ${p}`);
  return p.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** RFC 6902 add, replace, remove (what deploy/ uses). */
function applyJson6902(doc: Obj, ops: Obj[], where: string): void {
  for (const op of ops) {
    const keys = pointer(op.path as string);
    const last = keys.pop()!;
    let parent: any = doc;
    for (const k of keys) {
      parent = Array.isArray(parent) ? parent[Number(k)] : parent?.[k];
      if (parent === undefined || parent === null) throw new Error(`${where}: ${op.op} ${op.path}: no such parent`);
    }
    const value = structuredClone(op.value) as unknown;
    if (op.op === 'add') {
      if (Array.isArray(parent)) {
        const i = last === '-' ? parent.length : Number(last);
        if (!(i >= 0 && i <= parent.length)) throw new Error(`${where}: add ${op.path}: index out of range`);
        parent.splice(i, 0, value);
      } else parent[last] = value;
    } else if (op.op === 'replace') {
      if (!(Array.isArray(parent) ? Number(last) < parent.length : last in parent)) throw new Error(`${where}: replace ${op.path}: nothing there`);
      parent[Array.isArray(parent) ? Number(last) : last] = value;
    } else if (op.op === 'remove') {
      if (Array.isArray(parent)) parent.splice(Number(last), 1);
      else if (last in parent) delete parent[last];
      else throw new Error(`${where}: remove ${op.path}: nothing there`);
    } else throw new Error(`${where}: JSON 6902 op ${op.op} is not rendered by this test`);
  }
}

function applyPatches(objects: Obj[], patches: Obj[] | undefined, dir: string, files: Set<string>): void {
  for (const p of patches ?? []) {
    if (!p.path || p.patch) throw new Error(`${dir}: only patches with a path are rendered by this test`);
    const file = path.join(dir, p.path as string);
    files.add(file);
    const docs = loadYaml(file);
    if (docs.length !== 1 || !Array.isArray(docs[0])) {
      throw new Error(`${path.relative(ROOT, file)}: only JSON 6902 patches (a list of operations) are rendered by this test`);
    }
    const t = (p.target ?? {}) as Obj;
    const matches = objects.filter(
      (o) =>
        (t.group === undefined || groupOf(o.apiVersion) === t.group) &&
        (t.version === undefined || versionOf(o.apiVersion) === t.version) &&
        (t.kind === undefined || o.kind === t.kind) &&
        (t.name === undefined || o.metadata?.name === t.name) &&
        (t.namespace === undefined || o.metadata?.namespace === t.namespace),
    );
    if (matches.length === 0) throw new Error(`${path.relative(ROOT, file)}: the patch target matches nothing`);
    for (const o of matches) applyJson6902(o, docs[0] as Obj[], path.relative(ROOT, file));
  }
}

function podSpecs(o: Obj): Obj[] {
  const spec = o.spec?.template?.spec ?? (o.kind === 'Pod' ? o.spec : undefined);
  return spec ? [spec] : [];
}

function applyImages(objects: Obj[], images: Obj[] | undefined): void {
  for (const img of images ?? []) {
    for (const o of objects) {
      for (const spec of podSpecs(o)) {
        for (const c of [...(spec.containers ?? []), ...(spec.initContainers ?? [])] as Obj[]) {
          const m = /^([^@]+?)(?::([\w][\w.-]*))?(?:@(.+))?$/.exec(c.image as string);
          if (!m || m[1] !== img.name) continue;
          const name = (img.newName as string | undefined) ?? m[1];
          if (img.digest) c.image = `${name}@${img.digest}`;
          else {
            const tag = (img.newTag as string | undefined) ?? m[2];
            c.image = tag ? `${name}:${tag}` : name;
          }
        }
      }
    }
  }
}

function render(dir: string, files = new Set<string>()): Rendered {
  const { file, k } = kustomizationOf(dir);
  files.add(file);
  for (const key of Object.keys(k)) {
    if (!KUSTOMIZATION_FIELDS.has(key)) throw new Error(`${path.relative(ROOT, file)}: field ${key} is not rendered by test/deploy.test.ts (teach it)`);
  }
  expect(`${k.apiVersion} ${k.kind}`, path.relative(ROOT, file)).toBe('kustomize.config.k8s.io/v1beta1 Kustomization');
  const objects: Obj[] = [];
  for (const r of (k.resources ?? []) as string[]) {
    const p = path.join(dir, r);
    if (!existsSync(p)) throw new Error(`${path.relative(ROOT, file)}: resource ${r} does not exist`);
    if (statSync(p).isDirectory()) objects.push(...render(p, files).objects);
    else {
      files.add(p);
      objects.push(...loadYaml(p));
    }
  }
  for (const c of (k.components ?? []) as string[]) {
    const cdir = path.join(dir, c);
    const { file: cfile, k: ck } = kustomizationOf(cdir);
    files.add(cfile);
    expect(`${ck.apiVersion} ${ck.kind}`, path.relative(ROOT, cfile)).toBe('kustomize.config.k8s.io/v1alpha1 Component');
    for (const key of Object.keys(ck)) {
      if (!['apiVersion', 'kind', 'resources', 'patches'].includes(key)) throw new Error(`${path.relative(ROOT, cfile)}: field ${key} is not rendered by this test`);
    }
    for (const r of (ck.resources ?? []) as string[]) {
      const p = path.join(cdir, r);
      if (!existsSync(p) || statSync(p).isDirectory()) throw new Error(`${path.relative(ROOT, cfile)}: resource ${r} is not a file`);
      files.add(p);
      objects.push(...loadYaml(p));
    }
    applyPatches(objects, ck.patches as Obj[] | undefined, cdir, files);
  }
  applyPatches(objects, k.patches as Obj[] | undefined, dir, files);
  applyImages(objects, k.images as Obj[] | undefined);
  const ids = objects.map(idOf);
  expect(ids.filter((id, i) => ids.indexOf(id) !== i), `${path.relative(ROOT, dir)}: duplicate objects`).toEqual([]);
  return { objects, files };
}

// ---------------------------------------------------------------------------------------
// Schema validation
// ---------------------------------------------------------------------------------------

type ModelClass = new (data: Obj) => { validate(): void };
const MODELS: Record<string, Record<string, unknown>> = {
  v1: coreV1,
  'apps/v1': appsV1,
  'rbac.authorization.k8s.io/v1': rbacV1,
  'monitoring.coreos.com/v1': monitoringV1,
};

function schemaErrors(o: Obj): string[] {
  const model = MODELS[o.apiVersion as string]?.[o.kind as string] as ModelClass | undefined;
  if (!model) return [`${o.apiVersion} ${o.kind}: no schema known to this test (add its kubernetes-models module)`];
  try {
    new model(structuredClone(o)).validate();
    return [];
  } catch (err) {
    return [`${o.kind}/${o.metadata?.name}: ${(err as Error).message}`];
  }
}

/**
 * Fields the Kubernetes API does not know (a typo such as readOnlyRootFilesytem passes the
 * schemas, which allow extra fields, and is then silently dropped), from the attribute maps
 * of @kubernetes/client-node's API types. Built-in kinds only.
 */
function unknownFields(value: unknown, type: string, at: string, out: string[]): void {
  if (value === null || value === undefined) return;
  const arr = /^Array<(.+)>$/.exec(type);
  if (arr) {
    if (Array.isArray(value)) value.forEach((v, i) => unknownFields(v, arr[1]!, `${at}/${i}`, out));
    return;
  }
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    for (const [k, v] of Object.entries(value as Obj)) unknownFields(v, map[1]!, `${at}/${k}`, out);
    return;
  }
  const cls = (k8s as unknown as Record<string, { getAttributeTypeMap?(): { baseName: string; type: string }[] }>)[type];
  if (!cls?.getAttributeTypeMap || typeof value !== 'object') return;
  const attrs = cls.getAttributeTypeMap();
  for (const [k, v] of Object.entries(value as Obj)) {
    const a = attrs.find((x) => x.baseName === k);
    if (!a) out.push(`${at}/${k}`);
    else unknownFields(v, a.type, `${at}/${k}`, out);
  }
}

// ---------------------------------------------------------------------------------------
// What the exporter knows
// ---------------------------------------------------------------------------------------

const KNOWN_FLAGS = new Set<string>([
  ...FLAGS.map((f) => f.flag),
  ...COLLECTORS.flatMap((c) => [`--collector.${c.name}`, `--no-collector.${c.name}`]),
]);
const KNOWN_ENV = new Set<string>([...FLAGS.map((f) => f.env), ...COLLECTORS.map((c) => collectorEnv(c.name))]);
/** Variables for the NVIDIA container runtime, not for the exporter. */
const RUNTIME_ENV: Record<string, string> = { NVIDIA_VISIBLE_DEVICES: 'all', NVIDIA_DRIVER_CAPABILITIES: 'utility' };

const FLAG_DEFAULTS = parseFlags([], {});
if (FLAG_DEFAULTS.kind !== 'run') throw new Error('parseFlags without flags');

// ---------------------------------------------------------------------------------------

const ENTRY_POINTS = ['.', 'overlays/per-process', 'overlays/pod-labels', 'overlays/dra', 'overlays/full', 'overlays/tls', 'overlays/dcgm-compat', 'overlays/grafana-dashboards'];
const rendered = new Map(ENTRY_POINTS.map((e) => [e, render(path.join(DEPLOY, e))]));

function only(objects: Obj[], kind: string): Obj {
  const found = objects.filter((o) => o.kind === kind);
  expect(found, kind).toHaveLength(1);
  return found[0]!;
}

function exporterContainer(ds: Obj): Obj {
  const c = (ds.spec.template.spec.containers as Obj[])[0]!;
  expect(c.name).toBe('exporter');
  return c;
}

/** The container's args and variables, parsed as the exporter parses them. */
function containerConfig(c: Obj): Config {
  const env: Record<string, string> = {};
  for (const e of (c.env ?? []) as Obj[]) {
    if (e.value !== undefined) env[e.name] = String(e.value);
    else if (e.valueFrom?.fieldRef?.fieldPath === 'spec.nodeName') env[e.name] = 'gpu-node-1';
    else throw new Error(`env ${e.name}: a source this test does not resolve`);
  }
  const r = parseFlags((c.args ?? []) as string[], env);
  if (r.kind !== 'run') throw new Error(`args ${JSON.stringify(c.args)} ask for ${r.kind}`);
  return r.config;
}

function hostMount(ds: Obj, c: Obj, mountPath: string): { mount: Obj; volume: Obj } | undefined {
  const mount = ((c.volumeMounts ?? []) as Obj[]).find((m) => m.mountPath === mountPath);
  if (!mount) return undefined;
  const volume = (ds.spec.template.spec.volumes as Obj[]).find((v) => v.name === mount.name);
  expect(volume, `volume ${mount.name}`).toBeDefined();
  return { mount, volume: volume! };
}

function quantityBytes(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|k|M|G)?$/.exec(q);
  if (!m) throw new Error(`quantity ${q}`);
  const unit: Record<string, number> = { '': 1, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, k: 1e3, M: 1e6, G: 1e9 };
  return Number(m[1]) * unit[m[2] ?? '']!;
}

describe('deploy/ kustomizations', () => {
  it('every manifest under deploy/ is used by a kustomization (deploy/rules/ holds the rule sources and the plain rules file, not manifests)', () => {
    const used = new Set([...rendered.values()].flatMap((r) => [...r.files]));
    const walk = (d: string): string[] =>
      readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [path.join(d, e.name)]));
    const yamls = walk(DEPLOY).filter((f) => /\.ya?ml$/.test(f) && !f.startsWith(path.join(DEPLOY, 'rules') + path.sep));
    expect(yamls.filter((f) => !used.has(f)).map((f) => path.relative(ROOT, f))).toEqual([]);
  });

  it('each overlay is the base plus its components (it contains every object of deploy/)', () => {
    const base = rendered.get('.')!.objects.map(idOf);
    for (const o of ENTRY_POINTS.slice(1)) {
      expect(kustomizationOf(path.join(DEPLOY, o)).k.resources, o).toContain('../../base');
      const ids = rendered.get(o)!.objects.map(idOf);
      expect(base.filter((id) => !ids.includes(id)), o).toEqual([]);
    }
    expect(kustomizationOf(DEPLOY).k.resources).toEqual(['base']);
  });

  const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;
  it.runIf(kubectl)('renders as `kubectl kustomize` does (runs where kubectl is installed)', () => {
    for (const e of ENTRY_POINTS) {
      const r = spawnSync('kubectl', ['kustomize', path.join(DEPLOY, e)], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const theirs = new Map(parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj).filter(Boolean).map((o) => [idOf(o), o]));
      const ours = new Map(rendered.get(e)!.objects.map((o) => [idOf(o), o]));
      expect(ours, e).toEqual(theirs);
    }
  });
});

describe.each(ENTRY_POINTS)('deploy/%s', (entry) => {
  const { objects } = rendered.get(entry)!;
  const ds = only(objects, 'DaemonSet');
  const pod = ds.spec.template.spec as Obj;
  const c = exporterContainer(ds);
  // Parsed in the tests (a flag the exporter refuses fails them, not the collection).
  let parsed: Config | undefined;
  const cfg = (): Config => (parsed ??= containerConfig(c));
  const perProcess = entry.includes('per-process') || entry.includes('full');
  const podLabels = entry.includes('pod-labels') || entry.includes('full');
  const dra = entry.includes('dra') || entry.includes('full');
  const dcgmCompat = entry.includes('dcgm-compat');
  const args = (c.args ?? []) as string[];

  it('every object is valid against the Kubernetes and prometheus-operator schemas and has no unknown field', () => {
    expect(objects.flatMap(schemaErrors)).toEqual([]);
    const unknown: string[] = [];
    for (const o of objects.filter((x) => !groupOf(x.apiVersion).endsWith('coreos.com'))) {
      const type = `V1${o.kind}`;
      expect(typeof (k8s as unknown as Record<string, unknown>)[type], type).toBe('function');
      unknownFields(o, type, `${o.kind}/${o.metadata.name}`, unknown);
    }
    expect(unknown).toEqual([]);
  });

  it('namespaced objects live in a namespace the manifests create', () => {
    const ns = only(objects, 'Namespace').metadata.name as string;
    expect(ns).toBe('gpu-monitoring');
    for (const o of objects.filter((x) => !['Namespace', 'ClusterRole', 'ClusterRoleBinding'].includes(x.kind))) {
      expect(o.metadata.namespace, idOf(o)).toBe(ns);
    }
  });

  it('the container has no command (the image ENTRYPOINT runs node with its flags) and the image tag is the package version', () => {
    expect(c.command).toBeUndefined();
    expect(c.image).toMatch(new RegExp(`:${PKG.version.replace(/\./g, '\\.')}$`));
  });

  it('every arg is a --flag=value of the exporter and every variable a flag twin or a container-runtime variable', () => {
    for (const a of (c.args ?? []) as string[]) {
      const name = a.includes('=') ? a.slice(0, a.indexOf('=')) : a;
      expect(KNOWN_FLAGS.has(name), `${a}: not a flag in src/config/flags.ts`).toBe(true);
      expect(a.includes('=') || /^--(no-)?collector\./.test(a), `${a}: write --flag=value`).toBe(true);
    }
    for (const e of (c.env ?? []) as Obj[]) {
      if (e.name in RUNTIME_ENV) expect(e.value, e.name).toBe(RUNTIME_ENV[e.name]);
      else expect(KNOWN_ENV.has(e.name), `${e.name}: not an environment twin of a flag in src/config/flags.ts`).toBe(true);
    }
    for (const [name, value] of Object.entries(RUNTIME_ENV)) {
      expect(((c.env ?? []) as Obj[]).find((e) => e.name === name)?.value, name).toBe(value);
    }
    // The exporter accepts them all together (values, and e.g. --kubernetes.pod-labels only
    // with --kubernetes.pod-metadata=true).
    expect(cfg().nodeName).toBe('gpu-node-1');
  });

  it('the port is named metrics, is the listen port, and the Service and ServiceMonitor point at it', () => {
    const port = ((c.ports ?? []) as Obj[]).find((p) => p.name === 'metrics');
    expect(port).toBeDefined();
    expect(port!.containerPort).toBe(cfg().listenPort);
    expect(port!.containerPort).toBe(9400);
    const svc = only(objects, 'Service');
    const sp = (svc.spec.ports as Obj[]).find((p) => p.name === 'metrics');
    expect(sp).toBeDefined();
    expect([port!.name, port!.containerPort]).toContain(sp!.targetPort);
    const sm = only(objects, 'ServiceMonitor');
    const ep = (sm.spec.endpoints as Obj[])[0]!;
    expect(ep.port).toBe(sp!.name);
    expect(ep.path ?? '/metrics').toBe('/metrics');
  });

  it('selectors match: DaemonSet and Service select the pod template, the ServiceMonitor the Service', () => {
    const podLabelsOf = ds.spec.template.metadata.labels as Record<string, string>;
    const subset = (sel: Record<string, string>, labels: Record<string, string>): boolean => Object.entries(sel).every(([k, v]) => labels[k] === v);
    expect(Object.keys(ds.spec.selector.matchLabels).length).toBeGreaterThan(0);
    expect(subset(ds.spec.selector.matchLabels, podLabelsOf)).toBe(true);
    const svc = only(objects, 'Service');
    expect(subset(svc.spec.selector, podLabelsOf)).toBe(true);
    const sm = only(objects, 'ServiceMonitor');
    expect(subset(sm.spec.selector.matchLabels, svc.metadata.labels)).toBe(true);
    expect(sm.spec.namespaceSelector?.any === true || sm.spec.namespaceSelector?.matchNames?.includes(svc.metadata.namespace) || !sm.spec.namespaceSelector).toBe(true);
    expect(sm.metadata.namespace).toBe(svc.metadata.namespace);
  });

  it('the ServiceMonitor keeps the exporter\'s labels (dcgm-compat: renames them exported_*), names the instance by node and scrapes every 15-30 s', () => {
    const ep = (only(objects, 'ServiceMonitor').spec.endpoints as Obj[])[0]!;
    expect(ep.honorLabels).toBe(!dcgmCompat);
    expect(['15s', '30s']).toContain(ep.interval);
    const rl = ((ep.relabelings ?? []) as Obj[]).find((r) => r.targetLabel === 'instance');
    expect(rl?.sourceLabels).toEqual(['__meta_kubernetes_pod_node_name']);
    expect(rl?.action ?? 'replace').toBe('replace');
  });

  it('probes /healthz and /readyz on the metrics port', () => {
    expect(c.livenessProbe.httpGet).toMatchObject({ path: '/healthz', port: 'metrics' });
    expect(c.readinessProbe.httpGet).toMatchObject({ path: '/readyz', port: 'metrics' });
  });

  it('runs on GPU nodes, one exporter per node, node-critical', () => {
    expect(pod.nodeSelector).toEqual({ 'nvidia.com/gpu.present': 'true' });
    expect(pod.tolerations).toContainEqual({ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' });
    expect(pod.priorityClassName).toBe('system-node-critical');
    expect(ds.spec.updateStrategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } });
    const env = Object.fromEntries(((c.env ?? []) as Obj[]).map((e) => [e.name, e]));
    expect(env.NODE_NAME?.valueFrom?.fieldRef?.fieldPath).toBe('spec.nodeName');
  });

  it('a stop on SIGTERM (--shutdown-timeout) ends before the kubelet kills the pod (terminationGracePeriodSeconds)', () => {
    for (const [entry, r] of rendered) {
      const d = only(r.objects, 'DaemonSet');
      const graceSeconds = Number(d.spec.template.spec.terminationGracePeriodSeconds ?? 30);
      expect(containerConfig(exporterContainer(d)).shutdownTimeoutMs, entry).toBeLessThan(graceSeconds * 1000);
    }
  });

  it('security context: UID 0, no capabilities, read-only root, no escalation, RuntimeDefault seccomp', () => {
    expect(c.securityContext).toMatchObject({
      runAsUser: 0,
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(c.securityContext.capabilities.add).toBeUndefined();
    expect(c.securityContext.privileged ?? false).toBe(false);
    expect(pod.hostNetwork ?? false).toBe(false);
    for (const m of (c.volumeMounts ?? []) as Obj[]) expect(m.readOnly, `mount ${m.mountPath}`).toBe(true);
  });

  it('resources: requests below limits, memory limit above the benchmark\'s resident set with room for pod metadata', () => {
    const { requests, limits } = c.resources as { requests: Record<string, string>; limits: Record<string, string> };
    expect(requests.cpu).toBeDefined();
    expect(quantityBytes(requests.memory!)).toBeLessThanOrEqual(quantityBytes(limits.memory!));
    // README benchmark: ~76 MB resident, +40 MB with --kubernetes.pod-metadata.
    // The Kubernetes client (pod metadata, DRA or both: one library, loaded once) adds ~40 MB.
    expect(quantityBytes(requests.memory!)).toBeGreaterThanOrEqual((cfg().podMetadata || cfg().kubernetesDra ? 120 : 80) * 1e6);
    expect(quantityBytes(limits.memory!)).toBeGreaterThanOrEqual(160 * 1e6);
  });

  it('the host paths the flags name are mounted read-only from the host (directories, not files)', () => {
    const socketDir = path.posix.dirname(cfg().kubeletSocket);
    expect(cfg().kubeletSocket).toBe(FLAG_DEFAULTS.config.kubeletSocket);
    const pr = hostMount(ds, c, socketDir);
    expect(pr, `a mount at ${socketDir}`).toBeDefined();
    expect(pr!.volume.hostPath).toMatchObject({ path: '/var/lib/kubelet/pod-resources' });
    expect(['Directory', 'DirectoryOrCreate']).toContain(pr!.volume.hostPath.type);

    const drv = hostMount(ds, c, cfg().driverRoot);
    expect(drv, `a mount at ${cfg().driverRoot}`).toBeDefined();
    expect(drv!.volume.hostPath).toEqual({ path: '/run/nvidia/driver', type: 'DirectoryOrCreate' });
    // The GPU Operator mounts the driver after the exporter may have started.
    expect(drv!.mount.mountPropagation).toBe('HostToContainer');

    for (const [flagValue, hostPath] of [[cfg().procfsPath, '/proc'], [cfg().podLogsPath, '/var/log']] as const) {
      if (perProcess) {
        expect(flagValue).not.toBe(hostPath);
        const m = hostMount(ds, c, flagValue);
        expect(m, `a mount at ${flagValue}`).toBeDefined();
        expect(m!.volume.hostPath).toEqual({ path: hostPath, type: 'Directory' });
      } else {
        expect(flagValue, 'the default: per-process attribution is the overlay\'s').toBe(hostPath);
      }
    }
    expect(pod.hostPID ?? false).toBe(perProcess);
  });

  it('Kubernetes API access only with pod metadata or DRA: token, RBAC to list and watch pods, to get, list and watch ResourceSlices, nothing else', () => {
    expect(cfg().podMetadata).toBe(podLabels);
    expect(cfg().kubernetesDra).toBe(dra);
    expect(args.filter((a) => a.startsWith('--kubernetes.dra')), 'the DRA flag').toEqual(dra ? ['--kubernetes.dra=true'] : []);
    expect(pod.automountServiceAccountToken).toBe(podLabels || dra);
    const sa = only(objects, 'ServiceAccount');
    expect(pod.serviceAccountName).toBe(sa.metadata.name);
    expect(sa.automountServiceAccountToken, 'the pod spec, not the service account, turns the token on').toBe(false);
    const bindings = objects.filter((o) => o.kind === 'ClusterRoleBinding' || o.kind === 'RoleBinding');
    if (podLabels) expect(cfg().podLabelAllowlist?.test('app')).toBe(true);
    else expect(cfg().podLabelAllowlist).toBeUndefined();
    // Every binding binds the exporter's service account to a ClusterRole the manifests create.
    const granted: Obj[] = [];
    for (const b of bindings) {
      expect(b.kind, b.metadata.name).toBe('ClusterRoleBinding');
      expect(b.subjects, b.metadata.name).toEqual([{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: sa.metadata.namespace }]);
      expect(b.roleRef.apiGroup).toBe('rbac.authorization.k8s.io');
      const role = objects.find((o) => o.kind === b.roleRef.kind && o.metadata.name === b.roleRef.name);
      expect(role, `the ClusterRole bound by ${b.metadata.name}`).toBeDefined();
      granted.push(...(role!.rules as Obj[]));
    }
    expect(objects.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role').length, 'no role without a binding').toBe(bindings.length);
    const expected: Obj[] = [];
    if (podLabels) expected.push({ apiGroups: [''], resources: ['pods'], verbs: ['list', 'watch'] });
    if (dra) expected.push({ apiGroups: ['resource.k8s.io'], resources: ['resourceslices'], verbs: ['get', 'list', 'watch'] });
    const key = (r: Obj): string => JSON.stringify(r);
    expect(granted.map(key).sort()).toEqual(expected.map(key).sort());
  });
});

describe('deploy/overlays/dra and deploy/overlays/full: DRA ResourceSlices', () => {
  const roleOf = (objects: Obj[], name: string): Obj | undefined => objects.find((o) => o.kind === 'ClusterRole' && o.metadata.name === name);

  it('the DRA ClusterRole grants exactly get, list and watch on resourceslices in resource.k8s.io, and is bound to the exporter', () => {
    for (const entry of ['overlays/dra', 'overlays/full']) {
      const { objects } = rendered.get(entry)!;
      const role = roleOf(objects, 'kube-gpu-exporter-dra');
      expect(role, entry).toBeDefined();
      expect(role!.rules, entry).toEqual([{ apiGroups: ['resource.k8s.io'], resources: ['resourceslices'], verbs: ['get', 'list', 'watch'] }]);
      expect(role!.aggregationRule, entry).toBeUndefined();
      const binding = objects.find((o) => o.kind === 'ClusterRoleBinding' && o.roleRef.name === 'kube-gpu-exporter-dra');
      expect(binding?.subjects, entry).toEqual([{ kind: 'ServiceAccount', name: 'kube-gpu-exporter', namespace: 'gpu-monitoring' }]);
    }
  });

  it('--kubernetes.dra=true is in the args once, beside pod metadata in full, with the other args kept', () => {
    const base = exporterContainer(only(rendered.get('.')!.objects, 'DaemonSet')).args as string[];
    const draArgs = exporterContainer(only(rendered.get('overlays/dra')!.objects, 'DaemonSet')).args as string[];
    expect(draArgs).toEqual([...base, '--kubernetes.dra=true']);
    const full = exporterContainer(only(rendered.get('overlays/full')!.objects, 'DaemonSet')).args as string[];
    expect(full.filter((a) => a === '--kubernetes.dra=true')).toHaveLength(1);
    expect(full.filter((a) => a === '--kubernetes.pod-metadata=true')).toHaveLength(1);
    expect(full.slice(0, base.length)).toEqual(base);
    expect(full.filter((a) => a.startsWith('--path.'))).toHaveLength(2);
  });

  it('full has both the pod-metadata and the DRA RBAC, the token mounted and one memory request for both', () => {
    const { objects } = rendered.get('overlays/full')!;
    expect(roleOf(objects, 'kube-gpu-exporter-pod-metadata')?.rules).toEqual([{ apiGroups: [''], resources: ['pods'], verbs: ['list', 'watch'] }]);
    expect(roleOf(objects, 'kube-gpu-exporter-dra')?.rules).toEqual([{ apiGroups: ['resource.k8s.io'], resources: ['resourceslices'], verbs: ['get', 'list', 'watch'] }]);
    expect(objects.filter((o) => o.kind === 'ClusterRoleBinding').map((b) => b.roleRef.name).sort()).toEqual(['kube-gpu-exporter-dra', 'kube-gpu-exporter-pod-metadata']);
    const ds = only(objects, 'DaemonSet');
    expect(ds.spec.template.spec.automountServiceAccountToken).toBe(true);
    const request = (e: string): string => exporterContainer(only(rendered.get(e)!.objects, 'DaemonSet')).resources.requests.memory as string;
    // The same client library for both: one +40 MB, whichever component comes last.
    expect(request('overlays/full')).toBe(request('overlays/pod-labels'));
    expect(request('overlays/dra')).toBe(request('overlays/pod-labels'));
    expect(quantityBytes(request('overlays/dra'))).toBeGreaterThan(quantityBytes(request('.')));
  });
});

describe('deploy/overlays/dcgm-compat: dcgm-exporter\'s honorLabels: false', () => {
  it('is the base with only the ServiceMonitor\'s honorLabels turned off', () => {
    const base = rendered.get('.')!.objects;
    const compat = rendered.get('overlays/dcgm-compat')!.objects;
    expect(compat.map(idOf)).toEqual(base.map(idOf));
    const expected = structuredClone(base);
    (only(expected, 'ServiceMonitor').spec.endpoints as Obj[])[0]!.honorLabels = false;
    expect(compat).toEqual(expected);
  });
});

describe('deploy/overlays/tls: /metrics over HTTPS', () => {
  const { objects } = rendered.get('overlays/tls')!;
  const ds = only(objects, 'DaemonSet');
  const c = exporterContainer(ds);
  const cfg = containerConfig(c);
  const volumes = ds.spec.template.spec.volumes as Obj[];
  const mount = ((c.volumeMounts ?? []) as Obj[]).find((m) => cfg.webConfigFile?.startsWith(`${m.mountPath}/`));
  const volume = volumes.find((v) => v.name === mount?.name);
  const sources = (volume?.projected?.sources ?? []) as Obj[];
  const configMapSource = sources.find((src) => src.configMap)?.configMap as Obj | undefined;
  const secretSource = sources.find((src) => src.secret)?.secret as Obj | undefined;

  it('--web.config.file lies in a read-only projected volume of the web config ConfigMap and the TLS Secret', () => {
    expect(cfg.webConfigFile).toBe('/etc/kube-gpu-exporter/web/web-config.yml');
    expect(mount?.readOnly).toBe(true);
    expect(configMapSource?.items).toContainEqual({ key: 'web-config.yml', path: path.basename(cfg.webConfigFile!) });
    expect(objects.some((o) => o.kind === 'ConfigMap' && o.metadata.name === configMapSource?.name && o.metadata.namespace === ds.metadata.namespace)).toBe(true);
    expect(secretSource?.name).toBe('kube-gpu-exporter-tls');
  });

  it('the shipped web config loads in the exporter beside a certificate and key, as the volume lays them out', async () => {
    const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === configMapSource?.name)!;
    const pki = makeTestPki();
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const dir = mkdtempSync(path.join(pki.dir, 'volume-'));
    writeFileSync(path.join(dir, 'tls.crt'), pki.server.cert);
    writeFileSync(path.join(dir, 'tls.key'), pki.server.key);
    writeFileSync(path.join(dir, 'ca.crt'), pki.ca.cert);
    const file = path.join(dir, path.basename(cfg.webConfigFile!));
    writeFileSync(file, cm.data['web-config.yml'] as string);
    const web = loadWebConfig(file);
    expect(web.tls?.cert).toBe(pki.server.cert);
    expect(web.headers.map(([name]) => name)).toContain('X-Content-Type-Options');
  });

  it('probes use HTTPS; the ServiceMonitor scrapes HTTPS and verifies the Service name with the Secret\'s CA', () => {
    expect(c.livenessProbe.httpGet.scheme).toBe('HTTPS');
    expect(c.readinessProbe.httpGet.scheme).toBe('HTTPS');
    const sm = only(objects, 'ServiceMonitor');
    const svc = only(objects, 'Service');
    const ep = (sm.spec.endpoints as Obj[])[0]!;
    expect(ep.scheme).toBe('https');
    expect(ep.tlsConfig.serverName).toBe(`${svc.metadata.name}.${svc.metadata.namespace}.svc`);
    expect(ep.tlsConfig.ca.secret).toEqual({ name: secretSource?.name, key: 'ca.crt' });
  });
});

describe('deploy/components/grafana-dashboards: the dashboards as ConfigMaps for the Grafana sidecar', () => {
  const base = rendered.get('.')!.objects;
  const { objects } = rendered.get('overlays/grafana-dashboards')!;
  const dashboardFiles = readdirSync(DASHBOARDS_JSON_DIR).filter((f) => f.endsWith('.json')).sort();
  const configMaps = objects.filter((o) => o.kind === 'ConfigMap' && o.metadata.labels?.grafana_dashboard !== undefined);
  const expected = dashboardConfigMaps();

  it('is what scripts/build-dashboard-configmaps.ts writes from dashboards/*.json, and holds nothing else', () => {
    const built = buildDashboardConfigMaps();
    expect(readdirSync(COMPONENT_DIR).sort()).toEqual(built.map(([f]) => path.basename(f)).sort());
    for (const [file, text] of built) {
      expect(readFileSync(file, 'utf8'), `${path.relative(ROOT, file)}: run npx tsx scripts/build-dashboard-configmaps.ts`).toBe(text);
    }
  });

  it('the overlay is the base, unchanged, plus one ConfigMap per dashboard', () => {
    expect(kustomizationOf(path.join(DEPLOY, 'overlays/grafana-dashboards')).k.components).toEqual(['../../components/grafana-dashboards']);
    expect(objects.slice(0, base.length)).toEqual(base);
    expect(objects.slice(base.length)).toEqual(configMaps);
    expect(configMaps.map((o) => o.metadata.name)).toEqual(expected.map((cm) => cm.name));
    expect(expected.map((cm) => cm.source)).toEqual(dashboardFiles);
    expect(dashboardFiles).toHaveLength(3);
  });

  it('each holds its dashboard JSON byte for byte, under one key named for the file the sidecar writes', () => {
    for (const [i, cm] of configMaps.entries()) {
      const source = expected[i]!.source;
      expect(Object.keys(cm.data), cm.metadata.name).toEqual([expected[i]!.key]);
      expect(cm.binaryData, cm.metadata.name).toBeUndefined();
      const text = cm.data[expected[i]!.key] as string;
      expect(text, `${cm.metadata.name} holds dashboards/${source}`).toBe(readFileSync(path.join(DASHBOARDS_JSON_DIR, source), 'utf8'));
      expect(JSON.parse(text).uid).toMatch(/^kge-/);
    }
    const keys = configMaps.map((cm) => Object.keys(cm.data)[0]!);
    expect(new Set(keys).size).toBe(keys.length);
    for (const k of keys) expect(k).toMatch(/^kube-gpu-exporter-[a-z0-9-]+\.json$/);
  });

  it('labelled grafana_dashboard: "1" (a string, the sidecar\'s default label and value) with the folder in grafana_folder and k8s-sidecar-target-directory', () => {
    for (const cm of configMaps) {
      expect(cm.metadata.labels, cm.metadata.name).toMatchObject({ grafana_dashboard: '1', 'app.kubernetes.io/name': 'kube-gpu-exporter', 'app.kubernetes.io/component': 'dashboards' });
      // Relative: a directory below the sidecar's folder (/tmp/dashboards/GPU), the Grafana folder GPU.
      expect(cm.metadata.annotations, cm.metadata.name).toEqual({ grafana_folder: FOLDER, 'k8s-sidecar-target-directory': FOLDER });
      expect(FOLDER).toMatch(/^[A-Za-z0-9][\w-]*$/);
    }
  });

  it('names are DNS subdomains; each ConfigMap fits the 1 MiB object limit and kubectl apply\'s last-applied annotation (256 KiB)', () => {
    for (const cm of configMaps) {
      expect(cm.metadata.name).toMatch(/^[a-z0-9]([a-z0-9-]{0,251}[a-z0-9])?$/);
      const size = Buffer.byteLength(JSON.stringify(cm));
      expect(size, cm.metadata.name).toBeLessThan(256 * 1024 - 4096);
    }
  });

  it('only this overlay carries dashboards', () => {
    for (const [entry, r] of rendered) {
      if (entry !== 'overlays/grafana-dashboards') expect(r.objects.filter((o) => o.metadata?.labels?.grafana_dashboard !== undefined), entry).toEqual([]);
    }
  });
});

describe('the probe paths exist in the exporter', () => {
  const ds = only(rendered.get('.')!.objects, 'DaemonSet');
  const c = exporterContainer(ds);
  const app = (ok: boolean) =>
    createApp({
      body: () => Buffer.from(''),
      ready: () => ({ ok, reason: 'NVML not loaded' }),
      latestSample: () => undefined,
      version: PKG.version,
    });

  it('liveness answers 200', async () => {
    expect((await request(app(false)).get(c.livenessProbe.httpGet.path as string)).status).toBe(200);
  });

  it('readiness answers 200 when ready and 503 when not', async () => {
    expect((await request(app(true)).get(c.readinessProbe.httpGet.path as string)).status).toBe(200);
    expect((await request(app(false)).get(c.readinessProbe.httpGet.path as string)).status).toBe(503);
  });
});
