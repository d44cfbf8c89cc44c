/**
 * Protocol buffer decoding of the two PodResources responses the exporter reads (field numbers
 * from proto/podresources-v1.proto), written out by hand: a generic .proto loader costs the
 * exporter several MB of memory for two messages. Fields the exporter does not use (CPU ids,
 * memory, topology, CDI device names, DynamicResource's removed field 1) are skipped; unknown
 * fields are skipped as protobuf requires. Malformed input throws, and the call fails like any
 * other kubelet error.
 */

export interface ContainerDevices {
  resourceName: string;
  deviceIds: string[];
}
/** One device of a DRA claim, named as its ResourceSlice names it. */
export interface ClaimResource {
  driverName: string;
  poolName: string;
  deviceName: string;
  /** Set when the device is shared by consumable capacity (Kubernetes 1.35+): one allocation of several. */
  shareId?: string;
}
/** A ResourceClaim the container references, with every device allocated to it. */
export interface DynamicResource {
  claimName: string;
  claimNamespace: string;
  claimResources: ClaimResource[];
}
export interface ContainerResources {
  name: string;
  devices: ContainerDevices[];
  /** Set by the decoder when the kubelet sent any; responses built by hand may leave it out. */
  dynamicResources?: DynamicResource[];
}
export interface PodResources {
  name: string;
  namespace: string;
  containers: ContainerResources[];
}
export interface ListPodResourcesResponse {
  podResources: PodResources[];
}
export interface AllocatableResourcesResponse {
  devices: ContainerDevices[];
}

const VARINT = 0;
const FIXED64 = 1;
const LENGTH_DELIMITED = 2;
const FIXED32 = 5;

const utf8 = new TextDecoder('utf-8');

export class ProtobufError extends Error {
  constructor(what: string, at: number) {
    super(`malformed protobuf message: ${what} at byte ${at}`);
    this.name = 'ProtobufError';
  }
}

/** Reads fields of one message from `buf[start, end)`. */
class Reader {
  pos: number;

  constructor(
    private readonly buf: Uint8Array,
    start = 0,
    readonly end = buf.length,
  ) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  varint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new ProtobufError('truncated varint', this.pos);
      const b = this.buf[this.pos++]!;
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
      scale *= 128;
    }
    throw new ProtobufError('varint longer than 10 bytes', this.pos);
  }

  /** The next field's number and wire type. */
  tag(): { field: number; wire: number } {
    const at = this.pos;
    const t = this.varint();
    const field = Math.floor(t / 8);
    if (field === 0) throw new ProtobufError('field number 0', at);
    return { field, wire: t % 8 };
  }

  /** The bounds of a length-delimited value. */
  span(): [number, number] {
    const at = this.pos;
    const len = this.varint();
    const end = this.pos + len;
    if (end > this.end) throw new ProtobufError(`length ${len} runs past the end of the message`, at);
    const start = this.pos;
    this.pos = end;
    return [start, end];
  }

  string(): string {
    const [start, end] = this.span();
    return utf8.decode(this.buf.subarray(start, end));
  }

  message(): Reader {
    const [start, end] = this.span();
    return new Reader(this.buf, start, end);
  }

  skip(wire: number): void {
    const at = this.pos;
    switch (wire) {
      case VARINT:
        this.varint();
        return;
      case FIXED64:
        this.pos += 8;
        break;
      case LENGTH_DELIMITED:
        this.span();
        return;
      case FIXED32:
        this.pos += 4;
        break;
      default:
        throw new ProtobufError(`unsupported wire type ${wire}`, at);
    }
    if (this.pos > this.end) throw new ProtobufError('truncated fixed-size field', at);
  }

  /** Calls `onField` for every field; a field it does not take (returns false) is skipped. */
  fields(onField: (field: number, wire: number) => boolean): void {
    while (!this.done) {
      const { field, wire } = this.tag();
      if (!onField(field, wire)) this.skip(wire);
    }
  }

  /** Whether a field has the wire type its declaration needs (else protobuf says: fail). */
  expect(wire: number, want: number, what: string): void {
    if (wire !== want) throw new ProtobufError(`${what} has wire type ${wire}, not ${want}`, this.pos);
  }
}

function containerDevices(r: Reader): ContainerDevices {
  const d: ContainerDevices = { resourceName: '', deviceIds: [] };
  r.fields((field, wire) => {
    if (field === 1) {
      r.expect(wire, LENGTH_DELIMITED, 'ContainerDevices.resource_name');
      d.resourceName = r.string();
    } else if (field === 2) {
      r.expect(wire, LENGTH_DELIMITED, 'ContainerDevices.device_ids');
      d.deviceIds.push(r.string());
    } else return false;
    return true;
  });
  return d;
}

function claimResource(r: Reader): ClaimResource {
  const c: ClaimResource = { driverName: '', poolName: '', deviceName: '' };
  r.fields((field, wire) => {
    if (field === 2) {
      r.expect(wire, LENGTH_DELIMITED, 'ClaimResource.driver_name');
      c.driverName = r.string();
    } else if (field === 3) {
      r.expect(wire, LENGTH_DELIMITED, 'ClaimResource.pool_name');
      c.poolName = r.string();
    } else if (field === 4) {
      r.expect(wire, LENGTH_DELIMITED, 'ClaimResource.device_name');
      c.deviceName = r.string();
    } else if (field === 5) {
      r.expect(wire, LENGTH_DELIMITED, 'ClaimResource.share_id');
      c.shareId = r.string();
    } else return false;
    return true;
  });
  return c;
}

function dynamicResource(r: Reader): DynamicResource {
  const d: DynamicResource = { claimName: '', claimNamespace: '', claimResources: [] };
  r.fields((field, wire) => {
    if (field === 2) {
      r.expect(wire, LENGTH_DELIMITED, 'DynamicResource.claim_name');
      d.claimName = r.string();
    } else if (field === 3) {
      r.expect(wire, LENGTH_DELIMITED, 'DynamicResource.claim_namespace');
      d.claimNamespace = r.string();
    } else if (field === 4) {
      r.expect(wire, LENGTH_DELIMITED, 'DynamicResource.claim_resources');
      d.claimResources.push(claimResource(r.message()));
    } else return false;
    return true;
  });
  return d;
}

function containerResources(r: Reader): ContainerResources {
  const c: ContainerResources = { name: '', devices: [] };
  r.fields((field, wire) => {
    if (field === 1) {
      r.expect(wire, LENGTH_DELIMITED, 'ContainerResources.name');
      c.name = r.string();
    } else if (field === 2) {
      r.expect(wire, LENGTH_DELIMITED, 'ContainerResources.devices');
      c.devices.push(containerDevices(r.message()));
    } else if (field === 5) {
      r.expect(wire, LENGTH_DELIMITED, 'ContainerResources.dynamic_resources');
      (c.dynamicResources ??= []).push(dynamicResource(r.message()));
    } else return false;
    return true;
  });
  return c;
}

function podResources(r: Reader): PodResources {
  const p: PodResources = { name: '', namespace: '', containers: [] };
  r.fields((field, wire) => {
    if (field === 1) {
      r.expect(wire, LENGTH_DELIMITED, 'PodResources.name');
      p.name = r.string();
    } else if (field === 2) {
      r.expect(wire, LENGTH_DELIMITED, 'PodResources.namespace');
      p.namespace = r.string();
    } else if (field === 3) {
      r.expect(wire, LENGTH_DELIMITED, 'PodResources.containers');
      p.containers.push(containerResources(r.message()));
    } else return false;
    return true;
  });
  return p;
}

/** The items of a response whose one field the exporter reads is repeated field 1. */
function repeatedFirstField<T>(buf: Uint8Array, what: string, item: (r: Reader) => T): T[] {
  const r = new Reader(buf);
  const items: T[] = [];
  r.fields((field, wire) => {
    if (field !== 1) return false;
    r.expect(wire, LENGTH_DELIMITED, what);
    items.push(item(r.message()));
    return true;
  });
  return items;
}

export function decodeListPodResourcesResponse(buf: Uint8Array): ListPodResourcesResponse {
  return { podResources: repeatedFirstField(buf, 'ListPodResourcesResponse.pod_resources', podResources) };
}

export function decodeAllocatableResourcesResponse(buf: Uint8Array): AllocatableResourcesResponse {
  return { devices: repeatedFirstField(buf, 'AllocatableResourcesResponse.devices', containerDevices) };
}

/** Both requests the exporter sends are empty messages. */
export const EMPTY_REQUEST = Buffer.alloc(0);
