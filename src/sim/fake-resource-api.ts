/**
 * A small fake Kubernetes API server for DRA ResourceSlices (API group `resource.k8s.io`),
 * built on node:http, for tests and the demo.
 *
 * It serves
 *   GET /apis                                              APIGroupList (discovery)
 *   GET /apis/resource.k8s.io                              APIGroup
 *   GET /apis/resource.k8s.io/<v>                          APIResourceList
 *   GET /apis/resource.k8s.io/<v>/resourceslices           ResourceSliceList, or a watch
 *   GET /apis/resource.k8s.io/<v>/resourceslices/<name>    one ResourceSlice
 * for the versions it is told to serve (`v1`, `v1beta2`, `v1beta1`), with the real list/watch
 * protocol:
 *
 * - `fieldSelector` is honoured for `spec.nodeName` and `spec.driver` (`=`, `==`, `!=`,
 *   comma-separated terms); any other field answers 400. `labelSelector` is ignored.
 * - `watch=true` streams newline-delimited JSON watch events. A watch from `resourceVersion=N`
 *   first replays the recorded events newer than N, then streams live ones; without a version
 *   (or with "0") it starts with a synthetic ADDED per existing slice. A watch from a version
 *   older than the last {@link FakeResourceApi.expire} answers "410 Gone": as an HTTP 410
 *   Status, or (the real server's usual way) as a 200 whose only event is `ERROR` with a 410
 *   Status, depending on {@link FakeResourceApi.goneMode}.
 * - A watch whose selector stops (starts) matching a slice after a change gets DELETED (ADDED).
 * - `timeoutSeconds` on a watch ends the stream after that long.
 * - `allowWatchBookmarks=true` watches receive the bookmarks sent with {@link FakeResourceApi.bookmark}.
 *
 * Slices are stored in one version-neutral shape ({@link FakeSliceSpec}) and converted to the
 * requested version's JSON at serve time: v1 and v1beta2 put device attributes at
 * `spec.devices[].attributes`, v1beta1 nests them under `spec.devices[].basic.attributes`.
 *
 * Every request is recorded for assertions. Mutations take `{ notify: false }` to change the
 * store without any watch event (as if the events were lost or compacted away) — pair it with
 * {@link FakeResourceApi.expire} to force clients to relist.
 *
 * The list/watch machinery is shared with the pod fake (src/sim/fake-watch-store.ts); this module
 * adds the routes, discovery, the field selector's fields and the per-version slice JSON.
 */
import { randomUUID } from 'node:crypto';
import {
  FakeWatchServer,
  notFoundStatus,
  parseFieldSelector,
  statusObject,
  type FailNextOptions,
  type FakeRequest,
  type MutationOptions,
  type RecordedRequest,
  type StoreView,
} from './fake-watch-store.js';

export type { FailNextOptions, MutationOptions, RecordedRequest } from './fake-watch-store.js';

export type ResourceApiVersion = 'v1' | 'v1beta2' | 'v1beta1';

export type DeviceAttributeValue = { string: string } | { int: number } | { bool: boolean } | { version: string };

export interface FakeSliceDevice {
  name: string;
  attributes: Record<string, DeviceAttributeValue>;
}

export interface FakeSliceSpec {
  /** metadata.name */
  name: string;
  /** spec.nodeName */
  nodeName: string;
  /** spec.driver */
  driver: string;
  pool: { name: string; generation: number; resourceSliceCount: number };
  devices: FakeSliceDevice[];
}

export interface FakeResourceApiOptions {
  /** Versions of `resource.k8s.io` served; the first is the preferred one. Default `['v1','v1beta2','v1beta1']`; `[]` = the group is not served at all. */
  servedVersions?: ResourceApiVersion[];
  /** First resource version handed out (default 1000). */
  initialResourceVersion?: number;
  /** TCP port on 127.0.0.1 (default 0: a free one). */
  port?: number;
}

const GROUP = 'resource.k8s.io';
const ALL_VERSIONS: readonly ResourceApiVersion[] = ['v1', 'v1beta2', 'v1beta1'];

/** One stored slice: the caller's spec plus what the server assigns. Never mutated once stored. */
interface StoredSlice {
  spec: FakeSliceSpec;
  uid: string;
  resourceVersion: number;
  creationTimestamp: string;
}

type Route =
  | { kind: 'groupList' }
  | { kind: 'group' }
  | { kind: 'resources'; version: string }
  | { kind: 'collection'; version: string }
  | { kind: 'item'; version: string; name: string };

export class FakeResourceApi extends FakeWatchServer<StoredSlice> {
  readonly #served: readonly ResourceApiVersion[];

  private constructor(opts: FakeResourceApiOptions) {
    super(
      {
        initialResourceVersion: opts.initialResourceVersion,
        withResourceVersion: (s, resourceVersion) => ({ ...s, resourceVersion }),
        compare: (a, b) => (a.spec.name < b.spec.name ? -1 : a.spec.name > b.spec.name ? 1 : 0),
      },
      opts.port ?? 0,
    );
    this.#served = checkVersions(opts.servedVersions ?? [...ALL_VERSIONS]);
  }

  /** Start listening on 127.0.0.1 (on a free port unless {@link FakeResourceApiOptions.port} is set). */
  static start(opts: FakeResourceApiOptions = {}): Promise<FakeResourceApi> {
    return new FakeResourceApi(opts).listen();
  }

  /** The TCP port listened on (kept across {@link pause} and {@link resume}). */
  get port(): number {
    return this.http.port;
  }

  /** Versions served, preferred first. */
  get servedVersions(): ResourceApiVersion[] {
    return [...this.#served];
  }

  /** Add a slice (ADDED) or replace the one of the same name (MODIFIED; uid and creation time are kept). */
  putSlice(spec: FakeSliceSpec, opts: MutationOptions = {}): void {
    const before = this.store.get(spec.name);
    const after: StoredSlice = {
      spec: structuredClone(spec),
      uid: before?.uid ?? randomUUID(),
      resourceVersion: this.store.nextResourceVersion(),
      creationTimestamp: before?.creationTimestamp ?? new Date().toISOString(),
    };
    this.store.put(spec.name, after, opts);
  }

  /** Delete a slice (DELETED). Throws when there is none of that name. */
  deleteSlice(name: string, opts: MutationOptions = {}): void {
    if (!this.store.remove(name, opts)) throw new Error(`fake resource api: no ResourceSlice ${JSON.stringify(name)}`);
  }

  /** The stored slices (copies), by name. */
  slices(): FakeSliceSpec[] {
    return this.store.values().map((s) => structuredClone(s.spec));
  }

  /**
   * Answer the next `times` matching requests with an error Status instead. By default only
   * ResourceSlice requests (list, get, watch) match, filtered by `watch`; `discovery: true`
   * fails discovery requests instead.
   */
  failNext(times: number, status: number, message: string, opts: FailNextOptions = {}): void {
    this.http.failNext(times, status, message, opts);
  }

  /** Stop accepting connections (close listener and every open socket) — the API server is down. */
  async pause(): Promise<void> {
    this.store.dropWatches();
    await this.http.stop();
  }

  /** Listen again on the same port, with the same store and history. */
  async resume(): Promise<void> {
    await this.http.listen();
  }

  // --- request handling ---------------------------------------------------------

  protected override handle(req: FakeRequest): void {
    const { reply } = req;
    const route = parseRoute(req.path);
    if (!route || !this.#routeServed(route)) return reply(404, notFoundStatus(req.path));
    if (req.method !== 'GET') {
      return reply(405, statusObject(405, `the server does not allow this method on the requested resource (${req.method})`, 'MethodNotAllowed'));
    }
    if (this.http.answerCannedError(req, route.kind !== 'collection' && route.kind !== 'item')) return;

    switch (route.kind) {
      case 'groupList':
        return reply(200, { kind: 'APIGroupList', apiVersion: 'v1', groups: this.#served.length > 0 ? [this.#apiGroup()] : [] });
      case 'group':
        return reply(200, this.#apiGroup());
      case 'resources':
        return reply(200, apiResourceList(route.version));
      case 'item': {
        const slice = this.store.get(route.name);
        if (!slice) return reply(404, sliceNotFoundStatus(route.name));
        return reply(200, toObject(slice, route.version as ResourceApiVersion));
      }
      case 'collection':
        return this.#listOrWatch(route.version as ResourceApiVersion, req);
    }
  }

  /** Whether the group/version a route names is served (an unserved version, or any version when none is, is 404). */
  #routeServed(route: Route): boolean {
    if (route.kind === 'groupList') return true;
    if (route.kind === 'group') return this.#served.length > 0;
    return (this.#served as readonly string[]).includes(route.version);
  }

  #apiGroup(): object {
    const versions = this.#served.map((v) => ({ groupVersion: groupVersion(v), version: v }));
    return { kind: 'APIGroup', apiVersion: 'v1', name: GROUP, versions, preferredVersion: versions[0] };
  }

  #listOrWatch(version: ResourceApiVersion, req: FakeRequest): void {
    let matches: (slice: StoredSlice) => boolean;
    try {
      matches = parseFieldSelector(req.query['fieldSelector'] ?? '', SELECTABLE_FIELDS);
    } catch (err) {
      return req.reply(400, statusObject(400, (err as Error).message, 'BadRequest'));
    }
    const view: StoreView<StoredSlice> = { apiVersion: groupVersion(version), kind: 'ResourceSlice', matches, toObject: (s) => toObject(s, version) };
    if (req.watch) this.store.watch(req, view);
    else req.reply(200, this.store.list(view));
  }
}

// --- helpers ----------------------------------------------------------------------

function checkVersions(versions: ResourceApiVersion[]): readonly ResourceApiVersion[] {
  for (const v of versions) {
    if (!ALL_VERSIONS.includes(v)) throw new Error(`fake resource api: unknown version ${JSON.stringify(v)}`);
  }
  if (new Set(versions).size !== versions.length) throw new Error(`fake resource api: duplicate versions in ${versions.join(',')}`);
  return [...versions];
}

function groupVersion(version: string): string {
  return `${GROUP}/${version}`;
}

const GROUP_PATH = /^\/apis\/resource\.k8s\.io\/?$/;
const VERSION_PATH = /^\/apis\/resource\.k8s\.io\/([^/]+)\/?$/;
const SLICES_PATH = /^\/apis\/resource\.k8s\.io\/([^/]+)\/resourceslices(?:\/([^/]+))?\/?$/;

/** What a path names, whether or not its version is served; undefined for any other path. */
function parseRoute(pathname: string): Route | undefined {
  if (pathname === '/apis' || pathname === '/apis/') return { kind: 'groupList' };
  if (GROUP_PATH.test(pathname)) return { kind: 'group' };
  const v = VERSION_PATH.exec(pathname);
  if (v) return { kind: 'resources', version: v[1] as string };
  const s = SLICES_PATH.exec(pathname);
  if (!s) return undefined;
  const version = s[1] as string;
  return s[2] === undefined ? { kind: 'collection', version } : { kind: 'item', version, name: decodeURIComponent(s[2]) };
}

function apiResourceList(version: string): object {
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: groupVersion(version),
    resources: [
      { name: 'resourceslices', singularName: 'resourceslice', namespaced: false, kind: 'ResourceSlice', verbs: ['get', 'list', 'watch'] },
    ],
  };
}

/** The JSON of a stored slice in the given API version. */
function toObject(slice: StoredSlice, version: ResourceApiVersion): object {
  const { spec } = slice;
  return {
    apiVersion: groupVersion(version),
    kind: 'ResourceSlice',
    metadata: {
      name: spec.name,
      uid: slice.uid,
      resourceVersion: String(slice.resourceVersion),
      creationTimestamp: slice.creationTimestamp,
    },
    spec: {
      driver: spec.driver,
      nodeName: spec.nodeName,
      pool: { ...spec.pool },
      devices: spec.devices.map((d) => deviceObject(d, version)),
    },
  };
}

/** v1 and v1beta2 carry attributes on the device; v1beta1 nests them under `basic`. */
function deviceObject(device: FakeSliceDevice, version: ResourceApiVersion): object {
  const attributes = structuredClone(device.attributes);
  return version === 'v1beta1' ? { name: device.name, basic: { attributes } } : { name: device.name, attributes };
}

function sliceNotFoundStatus(name: string): object {
  return statusObject(404, `resourceslices.${GROUP} ${JSON.stringify(name)} not found`, 'NotFound', { name, group: GROUP, kind: 'resourceslices' });
}

/** The fields ResourceSlices can be selected by, and how to read each. */
const SELECTABLE_FIELDS: Readonly<Record<string, (slice: StoredSlice) => string>> = {
  'spec.nodeName': (s) => s.spec.nodeName,
  'spec.driver': (s) => s.spec.driver,
};
