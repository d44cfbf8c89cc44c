import type * as grpc from '@grpc/grpc-js';
import type {
  AllocatableResourcesResponse,
  ClaimResource,
  ContainerDevices,
  ContainerResources,
  DynamicResource,
  ListPodResourcesResponse,
  PodResources,
} from '../attribution/kubelet/podresources-codec.js';

/**
 * Protocol buffer encoding of the kubelet's PodResources v1 responses (field numbers from
 * proto/podresources-v1.proto), for the fake kubelet: with it and the hand-written service
 * definition below the fake kubelet needs no .proto loader, so neither the exporter nor the
 * demo loads one. test/podresources-codec.test.ts checks these bytes against protobufjs
 * (through @grpc/proto-loader, a development dependency) and against the exporter's decoder.
 *
 * The inputs are the decoder's types, plus the fields the exporter skips (CPU ids, memory,
 * NUMA topology, CDI device names), so a test can send what a real kubelet sends. Proto3
 * rules: a field at its default (empty string, 0, empty list) is not written, except the
 * `optional` ClaimResource.share_id, written whenever it is set; repeated int64 and uint64 are
 * packed; int64 accepts negative values (ten-byte two's complement varints).
 */

/** An int64/uint64 value: a safe integer, a bigint, or a decimal string (protobufjs's `longs: String`). */
export type Int64 = number | bigint | string;

/** NUMANode's one field is `ID` in the .proto, and so in protobufjs's objects too. */
export interface TopologyInfo {
  nodes: { ID: Int64 }[];
}
export interface ContainerDevicesIn extends ContainerDevices {
  topology?: TopologyInfo;
}
export interface ContainerMemoryIn {
  memoryType: string;
  size: Int64;
  topology?: TopologyInfo;
}
export interface ClaimResourceIn extends ClaimResource {
  cdiDevices?: { name: string }[];
}
export interface DynamicResourceIn extends Omit<DynamicResource, 'claimResources'> {
  claimResources: ClaimResourceIn[];
}
export interface ContainerResourcesIn extends Omit<ContainerResources, 'devices' | 'dynamicResources'> {
  devices: ContainerDevicesIn[];
  cpuIds?: Int64[];
  memory?: ContainerMemoryIn[];
  dynamicResources?: DynamicResourceIn[];
}
export interface PodResourcesIn extends Omit<PodResources, 'containers'> {
  containers: ContainerResourcesIn[];
}
export interface ListPodResourcesResponseIn extends Omit<ListPodResourcesResponse, 'podResources'> {
  podResources: PodResourcesIn[];
}
export interface AllocatableResourcesResponseIn extends Omit<AllocatableResourcesResponse, 'devices'> {
  devices: ContainerDevicesIn[];
  cpuIds?: Int64[];
  memory?: ContainerMemoryIn[];
}
export interface GetPodResourcesResponseIn {
  podResources?: PodResourcesIn;
}
export interface GetPodResourcesRequest {
  podName: string;
  podNamespace: string;
}

const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const FIXED32 = 5;

const U64 = 2n ** 64n;

function int64(v: Int64, what: string): bigint {
  let b: bigint;
  try {
    b = typeof v === 'bigint' ? v : BigInt(v);
  } catch {
    throw new RangeError(`${what}: ${String(v)} is not an integer`);
  }
  if (typeof v === 'number' && !Number.isSafeInteger(v)) throw new RangeError(`${what}: ${v} is not a safe integer`);
  return b;
}

/**
 * Bytes of one message, kept as a list of chunks: small writes (tags, varints) gather in
 * `pending`, strings and nested messages are appended as they are, so a nested message's bytes
 * are never copied until finish() joins everything once (a response of tens of megabytes encodes
 * in well under a second).
 */
class Writer {
  private readonly chunks: Uint8Array[] = [];
  private pending: number[] = [];
  /** Bytes written so far, pending ones included. */
  length = 0;

  private byte(v: number): void {
    this.pending.push(v);
    this.length++;
  }

  private flush(): void {
    if (!this.pending.length) return;
    this.chunks.push(Uint8Array.from(this.pending));
    this.pending = [];
  }

  private append(chunk: Uint8Array): void {
    this.flush();
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /** Another writer's bytes, as they are. */
  private appendWriter(inner: Writer): void {
    inner.flush();
    this.flush();
    for (const c of inner.chunks) this.chunks.push(c);
    this.length += inner.length;
  }

  varint(v: number | bigint): void {
    if (typeof v === 'number' && v >= 0 && v <= 0xffffffff) {
      while (v > 0x7f) {
        this.byte((v & 0x7f) | 0x80);
        v = Math.floor(v / 128);
      }
      this.byte(v);
      return;
    }
    let b = BigInt(v);
    if (b < -(U64 / 2n) || b >= U64) throw new RangeError(`${String(v)} does not fit in 64 bits`);
    if (b < 0n) b += U64; // int64: two's complement, always ten bytes
    while (b > 0x7fn) {
      this.byte(Number(b & 0x7fn) | 0x80);
      b >>= 7n;
    }
    this.byte(Number(b));
  }

  tag(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  raw(field: number, body: Uint8Array): void {
    this.tag(field, LENGTH_DELIMITED);
    this.varint(body.length);
    this.append(body);
  }

  /** A nested message (or packed list) written into its own writer, length-prefixed. */
  private nested(field: number, inner: Writer): void {
    this.tag(field, LENGTH_DELIMITED);
    this.varint(inner.length);
    this.appendWriter(inner);
  }

  /** A proto3 string with implicit presence: the empty string is not written. */
  string(field: number, s: string | undefined): void {
    if (s) this.raw(field, Buffer.from(s, 'utf8'));
  }

  /** A string with explicit presence (`optional`, or an element of a repeated field). */
  presentString(field: number, s: string | undefined): void {
    if (s !== undefined) this.raw(field, Buffer.from(s, 'utf8'));
  }

  /** A scalar integer with implicit presence (0 is not written). */
  integer(field: number, v: Int64 | undefined, what: string): void {
    if (v === undefined) return;
    const b = int64(v, what);
    if (b === 0n) return;
    this.tag(field, VARINT);
    this.varint(b);
  }

  /** A packed repeated int64/uint64. */
  packed(field: number, values: readonly Int64[] | undefined, what: string): void {
    if (!values?.length) return;
    const inner = new Writer();
    for (const v of values) inner.varint(int64(v, what));
    this.nested(field, inner);
  }

  message<T>(field: number, value: T | undefined, encode: (w: Writer, v: T) => void): void {
    if (value === undefined || value === null) return;
    const inner = new Writer();
    encode(inner, value);
    this.nested(field, inner);
  }

  repeated<T>(field: number, values: readonly T[] | undefined, encode: (w: Writer, v: T) => void): void {
    for (const v of values ?? []) this.message(field, v, encode);
  }

  finish(): Buffer {
    this.flush();
    return Buffer.concat(this.chunks, this.length);
  }
}

function topologyInfo(w: Writer, t: TopologyInfo): void {
  w.repeated(1, t.nodes, (n, node) => n.integer(1, node.ID, 'NUMANode.ID'));
}

function containerDevices(w: Writer, d: ContainerDevicesIn): void {
  w.string(1, d.resourceName);
  for (const id of d.deviceIds ?? []) w.presentString(2, id);
  w.message(3, d.topology, topologyInfo);
}

function containerMemory(w: Writer, m: ContainerMemoryIn): void {
  w.string(1, m.memoryType);
  w.integer(2, m.size, 'ContainerMemory.size');
  w.message(3, m.topology, topologyInfo);
}

function claimResource(w: Writer, c: ClaimResourceIn): void {
  w.repeated(1, c.cdiDevices, (d, cdi) => d.string(1, cdi.name));
  w.string(2, c.driverName);
  w.string(3, c.poolName);
  w.string(4, c.deviceName);
  w.presentString(5, c.shareId);
}

function dynamicResource(w: Writer, d: DynamicResourceIn): void {
  // Field 1 (class_name) was removed from the API; it is never written.
  w.string(2, d.claimName);
  w.string(3, d.claimNamespace);
  w.repeated(4, d.claimResources, claimResource);
}

function containerResources(w: Writer, c: ContainerResourcesIn): void {
  w.string(1, c.name);
  w.repeated(2, c.devices, containerDevices);
  w.packed(3, c.cpuIds, 'ContainerResources.cpu_ids');
  w.repeated(4, c.memory, containerMemory);
  w.repeated(5, c.dynamicResources, dynamicResource);
}

function podResources(w: Writer, p: PodResourcesIn): void {
  w.string(1, p.name);
  w.string(2, p.namespace);
  w.repeated(3, p.containers, containerResources);
}

export function encodeListPodResourcesResponse(m: ListPodResourcesResponseIn): Buffer {
  const w = new Writer();
  w.repeated(1, m.podResources, podResources);
  return w.finish();
}

export function encodeAllocatableResourcesResponse(m: AllocatableResourcesResponseIn): Buffer {
  const w = new Writer();
  w.repeated(1, m.devices, containerDevices);
  w.packed(2, m.cpuIds, 'AllocatableResourcesResponse.cpu_ids');
  w.repeated(3, m.memory, containerMemory);
  return w.finish();
}

export function encodeGetPodResourcesResponse(m: GetPodResourcesResponseIn): Buffer {
  const w = new Writer();
  w.message(1, m.podResources, podResources);
  return w.finish();
}

/** Encodes a GetPodResourcesRequest (the client side, for tests). */
export function encodeGetPodResourcesRequest(m: GetPodResourcesRequest): Buffer {
  const w = new Writer();
  w.string(1, m.podName);
  w.string(2, m.podNamespace);
  return w.finish();
}

// ---------------------------------------------------------------------------------------
// Requests: ListPodResourcesRequest and AllocatableResourcesRequest have no fields;
// GetPodResourcesRequest has two strings. Unknown fields are skipped; malformed input throws
// (grpc-js then answers INTERNAL, as a real server does).
// ---------------------------------------------------------------------------------------

function readVarint(buf: Uint8Array, at: { pos: number }): number {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (at.pos >= buf.length) throw new Error('malformed request: truncated varint');
    const b = buf[at.pos++]!;
    value += (b & 0x7f) * scale;
    if (b < 0x80) return value;
    scale *= 128;
  }
  throw new Error('malformed request: varint longer than 10 bytes');
}

/** Calls `onString` for every length-delimited field; skips the others. */
function readFields(buf: Uint8Array, onBytes: (field: number, bytes: Uint8Array) => void): void {
  const at = { pos: 0 };
  while (at.pos < buf.length) {
    const tag = readVarint(buf, at);
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    if (field === 0) throw new Error('malformed request: field number 0');
    if (wire === VARINT) readVarint(buf, at);
    else if (wire === FIXED64) at.pos += 8;
    else if (wire === FIXED32) at.pos += 4;
    else if (wire === LENGTH_DELIMITED) {
      const len = readVarint(buf, at);
      if (at.pos + len > buf.length) throw new Error('malformed request: length past the end');
      onBytes(field, buf.subarray(at.pos, at.pos + len));
      at.pos += len;
    } else throw new Error(`malformed request: wire type ${wire}`);
    if (at.pos > buf.length) throw new Error('malformed request: truncated field');
  }
}

/** ListPodResourcesRequest and AllocatableResourcesRequest: empty messages (unknown fields skipped). */
export function decodeEmptyRequest(buf: Uint8Array): Record<string, never> {
  readFields(buf, () => {});
  return {};
}

const utf8 = new TextDecoder('utf-8');
export function decodeGetPodResourcesRequest(buf: Uint8Array): GetPodResourcesRequest {
  const r: GetPodResourcesRequest = { podName: '', podNamespace: '' };
  readFields(buf, (field, bytes) => {
    if (field === 1) r.podName = utf8.decode(bytes);
    else if (field === 2) r.podNamespace = utf8.decode(bytes);
  });
  return r;
}

// ---------------------------------------------------------------------------------------
// The service, as @grpc/grpc-js's Server.addService takes it
// ---------------------------------------------------------------------------------------

function serverOnly(): never {
  throw new Error('the fake kubelet only serves the PodResources API');
}

function unary<Req, Res>(name: string, decodeRequest: (buf: Buffer) => Req, encodeResponse: (res: Res) => Buffer): grpc.MethodDefinition<Req, Res> {
  return {
    path: `/v1.PodResourcesLister/${name}`,
    requestStream: false,
    responseStream: false,
    requestSerialize: serverOnly,
    requestDeserialize: decodeRequest,
    responseSerialize: encodeResponse,
    responseDeserialize: serverOnly,
  };
}

/** v1.PodResourcesLister for a server: the three unary calls, encoded by this module. */
export const PODRESOURCES_SERVER_SERVICE = {
  List: unary<Record<string, never>, ListPodResourcesResponseIn>('List', decodeEmptyRequest, encodeListPodResourcesResponse),
  GetAllocatableResources: unary<Record<string, never>, AllocatableResourcesResponseIn>('GetAllocatableResources', decodeEmptyRequest, encodeAllocatableResourcesResponse),
  Get: unary<GetPodResourcesRequest, GetPodResourcesResponseIn>('Get', decodeGetPodResourcesRequest, encodeGetPodResourcesResponse),
} satisfies grpc.ServiceDefinition;
