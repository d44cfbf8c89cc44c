import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import {
  decodeAllocatableResourcesResponse,
  decodeListPodResourcesResponse,
  ProtobufError,
  type ListPodResourcesResponse,
} from '../src/attribution/kubelet/podresources-codec.js';
import {
  decodeEmptyRequest,
  decodeGetPodResourcesRequest,
  encodeAllocatableResourcesResponse,
  encodeGetPodResourcesRequest,
  encodeGetPodResourcesResponse,
  encodeListPodResourcesResponse,
  PODRESOURCES_SERVER_SERVICE,
  type AllocatableResourcesResponseIn,
  type ListPodResourcesResponseIn,
} from '../src/sim/podresources-encode.js';
import { Prng } from './support/prng.js';

/**
 * The reference: protobufjs (through @grpc/proto-loader, a development dependency) built from
 * proto/podresources-v1.proto. The hand-written decoder is checked against its encoder, and the
 * fake kubelet's hand-written encoder (src/sim/podresources-encode.ts) against its decoder.
 */
const PROTO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'proto', 'podresources-v1.proto');
const service = protoLoader.loadSync(PROTO, { keepCase: false, longs: String, enums: String, defaults: true, arrays: true })[
  'v1.PodResourcesLister'
] as unknown as grpc.ServiceDefinition;
const encodeList = (m: object) => service.List!.responseSerialize(m);
const encodeAllocatable = (m: object) => service.GetAllocatableResources!.responseSerialize(m);
const referenceDecodeList = (b: Buffer) => service.List!.responseDeserialize(b) as unknown;
const referenceDecodeAllocatable = (b: Buffer) => service.GetAllocatableResources!.responseDeserialize(b) as unknown;

function randomName(rand: () => number): string {
  const alphabet = ['a', 'z', '0', '-', '.', '"', '\\', '\n', 'é', '日本', '🚀', ' '];
  const n = Math.floor(rand() * 12);
  return Array.from({ length: n }, () => alphabet[Math.floor(rand() * alphabet.length)]).join('');
}

function randomList(rand: () => number): ListPodResourcesResponse & Record<string, unknown> {
  const pods = Array.from({ length: Math.floor(rand() * 6) }, () => ({
    name: randomName(rand),
    namespace: randomName(rand),
    containers: Array.from({ length: Math.floor(rand() * 3) }, () => ({
      name: randomName(rand),
      devices: Array.from({ length: Math.floor(rand() * 3) }, () => ({
        resourceName: rand() < 0.5 ? 'nvidia.com/gpu' : randomName(rand),
        deviceIds: Array.from({ length: Math.floor(rand() * 4) }, () => `GPU-${randomName(rand)}`),
        topology: { nodes: [{ ID: String(Math.floor(rand() * 4)) }] },
      })),
      dynamicResources: Array.from({ length: Math.floor(rand() * 3) }, () => ({
        claimName: randomName(rand),
        claimNamespace: randomName(rand),
        claimResources: Array.from({ length: Math.floor(rand() * 3) }, () => ({
          cdiDevices: [{ name: `k8s.gpu.nvidia.com/claim=${randomName(rand)}` }], // skipped
          driverName: rand() < 0.7 ? 'gpu.nvidia.com' : randomName(rand),
          poolName: randomName(rand),
          deviceName: `gpu-${randomName(rand)}`,
          ...(rand() < 0.3 ? { shareId: randomName(rand) } : {}),
        })),
      })),
      // fields the exporter skips
      cpuIds: ['1', '2', String(2 ** 40)],
      memory: [{ memoryType: 'memory', size: '1073741824' }],
    })),
  }));
  return { podResources: pods };
}

function strip(list: ListPodResourcesResponse): ListPodResourcesResponse {
  return {
    podResources: list.podResources.map((p) => ({
      name: p.name,
      namespace: p.namespace,
      containers: p.containers.map((c) => ({
        name: c.name,
        devices: c.devices.map((d) => ({ resourceName: d.resourceName, deviceIds: d.deviceIds })),
        ...(c.dynamicResources?.length
          ? {
              dynamicResources: c.dynamicResources.map((d) => ({
                claimName: d.claimName,
                claimNamespace: d.claimNamespace,
                claimResources: d.claimResources.map((r) => ({
                  driverName: r.driverName,
                  poolName: r.poolName,
                  deviceName: r.deviceName,
                  ...(r.shareId !== undefined ? { shareId: r.shareId } : {}),
                })),
              })),
            }
          : {}),
      })),
    })),
  };
}

function randomAllocatable(rand: () => number): AllocatableResourcesResponseIn {
  const ids = () => Array.from({ length: Math.floor(rand() * 4) }, () => String(Math.floor(rand() * 2 ** 53) - 2 ** 52));
  return {
    devices: Array.from({ length: Math.floor(rand() * 4) }, () => ({
      resourceName: rand() < 0.5 ? 'nvidia.com/gpu' : randomName(rand),
      deviceIds: Array.from({ length: Math.floor(rand() * 4) }, () => randomName(rand)),
      ...(rand() < 0.5 ? { topology: { nodes: ids().map((ID) => ({ ID })) } } : {}),
    })),
    cpuIds: ids(),
    memory: Array.from({ length: Math.floor(rand() * 3) }, () => ({ memoryType: randomName(rand), size: String(BigInt(Math.floor(rand() * 2 ** 53)) * 2048n) })),
  };
}

describe('PodResources decoding', () => {
  it('decodes what protobufjs encodes, for 300 random responses with hostile names', () => {
    const prng = new Prng(42);
    const rand = () => prng.next();
    for (let i = 0; i < 300; i++) {
      const msg = randomList(rand);
      expect(decodeListPodResourcesResponse(encodeList(msg))).toEqual(strip(msg));
    }
  });

  it('decodes GetAllocatableResources and skips CPU ids and memory', () => {
    const msg = { devices: [{ resourceName: 'nvidia.com/gpu', deviceIds: ['GPU-a', 'GPU-b'] }, { resourceName: 'nvidia.com/mig-1g.10gb', deviceIds: ['MIG-c'] }], cpuIds: ['0', '1'], memory: [{ memoryType: 'hugepages-2Mi', size: '2097152' }] };
    expect(decodeAllocatableResourcesResponse(encodeAllocatable(msg))).toEqual({ devices: msg.devices });
  });

  it('reads a DRA claim sent by a 1.27-1.30 kubelet: the removed class_name (field 1) is skipped', () => {
    const str = (field: number, text: string) => {
      const bytes = Buffer.from(text, 'utf8');
      return Buffer.concat([Buffer.from([(field << 3) | 2, bytes.length]), bytes]);
    };
    const nested = (field: number, body: Buffer) => Buffer.concat([Buffer.from([(field << 3) | 2, body.length]), body]);
    const claimResource = Buffer.concat([str(2, 'gpu.nvidia.com'), str(3, 'node-a'), str(4, 'gpu-0'), str(5, 'share-1')]);
    const dynamic = Buffer.concat([str(1, 'gpu.example.com'), str(2, 'train'), str(3, 'ml'), nested(4, claimResource)]);
    const container = Buffer.concat([str(1, 'main'), nested(5, dynamic)]);
    const pod = Buffer.concat([str(1, 'p'), str(2, 'n'), nested(3, container)]);
    expect(decodeListPodResourcesResponse(nested(1, pod))).toEqual({
      podResources: [
        {
          name: 'p',
          namespace: 'n',
          containers: [
            {
              name: 'main',
              devices: [],
              dynamicResources: [{ claimName: 'train', claimNamespace: 'ml', claimResources: [{ driverName: 'gpu.nvidia.com', poolName: 'node-a', deviceName: 'gpu-0', shareId: 'share-1' }] }],
            },
          ],
        },
      ],
    });
  });

  it('an empty message is an empty response', () => {
    expect(decodeListPodResourcesResponse(new Uint8Array())).toEqual({ podResources: [] });
  });

  it('skips unknown fields of every wire type', () => {
    const known = encodeList({ podResources: [{ name: 'p', namespace: 'n', containers: [] }] });
    const unknown = Buffer.from([
      0x48, 0x96, 0x01, // field 9 varint 150
      0x51, 1, 2, 3, 4, 5, 6, 7, 8, // field 10 fixed64
      0x5a, 0x02, 0x68, 0x69, // field 11 length-delimited "hi"
      0x65, 1, 2, 3, 4, // field 12 fixed32
    ]);
    expect(decodeListPodResourcesResponse(Buffer.concat([unknown, known, unknown]))).toEqual({ podResources: [{ name: 'p', namespace: 'n', containers: [] }] });
  });

  it.each([
    ['a truncated varint', [0x0a, 0x80]],
    ['a length past the end', [0x0a, 0x05, 0x0a]],
    ['a varint of 11 bytes', [0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]],
    ['field number 0', [0x02, 0x00]],
    ['a group (wire type 3)', [0x0b]],
    ['a known field with the wrong wire type', [0x08, 0x01]],
    ['a truncated fixed64', [0x49, 1, 2]],
  ])('refuses %s with a ProtobufError', (_what, bytes) => {
    expect(() => decodeListPodResourcesResponse(Buffer.from(bytes))).toThrow(ProtobufError);
  });

  it('never throws anything but a ProtobufError on random bytes', () => {
    const prng = new Prng(7);
    const rand = () => prng.next();
    for (let i = 0; i < 2000; i++) {
      const bytes = Buffer.from(Array.from({ length: Math.floor(rand() * 40) }, () => Math.floor(rand() * 256)));
      try {
        decodeListPodResourcesResponse(bytes);
      } catch (err) {
        expect(err).toBeInstanceOf(ProtobufError);
      }
    }
  });
});

describe('PodResources encoding (the fake kubelet, src/sim/podresources-encode.ts)', () => {
  it('encodes 300 random responses so that the exporter and protobufjs decode them as protobufjs encodes them', () => {
    const prng = new Prng(1234);
    const rand = () => prng.next();
    for (let i = 0; i < 300; i++) {
      const msg = randomList(rand) as ListPodResourcesResponseIn;
      const ours = encodeListPodResourcesResponse(msg);
      expect(decodeListPodResourcesResponse(ours)).toEqual(strip(msg));
      expect(referenceDecodeList(ours)).toEqual(referenceDecodeList(encodeList(msg)));
    }
  });

  it('encodes 300 random GetAllocatableResources answers (CPU ids, memory and NUMA topology too)', () => {
    const prng = new Prng(99);
    const rand = () => prng.next();
    for (let i = 0; i < 300; i++) {
      const msg = randomAllocatable(rand);
      const ours = encodeAllocatableResourcesResponse(msg);
      expect(decodeAllocatableResourcesResponse(ours)).toEqual({ devices: msg.devices.map((d) => ({ resourceName: d.resourceName, deviceIds: d.deviceIds })) });
      expect(referenceDecodeAllocatable(ours)).toEqual(referenceDecodeAllocatable(encodeAllocatable(msg)));
    }
  });

  it('writes int64 and uint64 at their limits as protobufjs reads them (negative CPU ids: ten-byte varints)', () => {
    const msg: AllocatableResourcesResponseIn = {
      devices: [{ resourceName: 'r', deviceIds: [''], topology: { nodes: [{ ID: 0 }, { ID: -1 }, { ID: 2n ** 63n - 1n }, { ID: '-9223372036854775808' }] } }],
      cpuIds: [0, 1, 127, 128, 2 ** 32, Number.MAX_SAFE_INTEGER, -1, -(2 ** 31)],
      memory: [{ memoryType: 'memory', size: 2n ** 64n - 1n }, { memoryType: '', size: 0 }],
    };
    expect(referenceDecodeAllocatable(encodeAllocatableResourcesResponse(msg))).toEqual({
      devices: [{ resourceName: 'r', deviceIds: [''], topology: { nodes: [{ ID: '0' }, { ID: '-1' }, { ID: '9223372036854775807' }, { ID: '-9223372036854775808' }] } }],
      cpuIds: ['0', '1', '127', '128', '4294967296', '9007199254740991', '-1', '-2147483648'],
      memory: [
        { memoryType: 'memory', size: '18446744073709551615', topology: null },
        { memoryType: '', size: '0', topology: null },
      ],
    });
    expect(() => encodeAllocatableResourcesResponse({ devices: [], cpuIds: [2 ** 53] })).toThrow(RangeError);
    expect(() => encodeAllocatableResourcesResponse({ devices: [], cpuIds: [2n ** 64n] })).toThrow(RangeError);
    expect(() => encodeAllocatableResourcesResponse({ devices: [], cpuIds: ['1.5'] })).toThrow(RangeError);
  });

  it('writes proto3 defaults as protobufjs does not, and share_id whenever it is set (explicit presence)', () => {
    const claim = (shareId?: string) => ({ driverName: '', poolName: '', deviceName: '', ...(shareId !== undefined ? { shareId } : {}) });
    const list = (shareId?: string): ListPodResourcesResponseIn => ({
      podResources: [{ name: '', namespace: '', containers: [{ name: '', devices: [], dynamicResources: [{ claimName: '', claimNamespace: '', claimResources: [claim(shareId)] }] }] }],
    });
    // pod { container { dynamic_resource { claim_resource {} } } }: implicit-presence fields at their default are left out.
    expect([...encodeListPodResourcesResponse(list())]).toEqual([0x0a, 0x06, 0x1a, 0x04, 0x2a, 0x02, 0x22, 0x00]);
    expect([...encodeListPodResourcesResponse(list(''))]).toEqual([0x0a, 0x08, 0x1a, 0x06, 0x2a, 0x04, 0x22, 0x02, 0x2a, 0x00]);
    expect(decodeListPodResourcesResponse(encodeListPodResourcesResponse(list(''))).podResources[0]!.containers[0]!.dynamicResources![0]!.claimResources).toEqual([claim('')]);
    expect(decodeListPodResourcesResponse(encodeListPodResourcesResponse(list())).podResources[0]!.containers[0]!.dynamicResources![0]!.claimResources).toEqual([claim()]);
    expect(encodeListPodResourcesResponse({ podResources: [] })).toEqual(Buffer.alloc(0));
  });

  it('encodes GetPodResourcesResponse and reads GetPodResourcesRequest as protobufjs does', () => {
    const prng = new Prng(5);
    const rand = () => prng.next();
    for (let i = 0; i < 50; i++) {
      const pod = (randomList(rand).podResources[0] ?? { name: 'p', namespace: 'n', containers: [] }) as ListPodResourcesResponseIn['podResources'][number];
      const ours = encodeGetPodResourcesResponse({ podResources: pod });
      expect(service.Get!.responseDeserialize(ours)).toEqual(service.Get!.responseDeserialize(service.Get!.responseSerialize({ podResources: pod })));
      expect(decodeListPodResourcesResponse(ours)).toEqual(strip({ podResources: [pod] })); // field 1 of both is the pod
      const req = { podName: randomName(rand), podNamespace: randomName(rand) };
      expect(decodeGetPodResourcesRequest(service.Get!.requestSerialize(req))).toEqual(req);
      expect(service.Get!.requestDeserialize(encodeGetPodResourcesRequest(req))).toEqual(req);
    }
    expect(encodeGetPodResourcesResponse({})).toEqual(Buffer.alloc(0));
  });

  it('the service definition: the three unary calls at the kubelet\'s paths; empty requests read, unknown fields skipped', () => {
    expect(Object.fromEntries(Object.entries(PODRESOURCES_SERVER_SERVICE).map(([k, m]) => [k, [m.path, m.requestStream, m.responseStream]]))).toEqual(
      Object.fromEntries(Object.entries(service).map(([k, m]) => [k, [m.path, m.requestStream, m.responseStream]])),
    );
    expect(decodeEmptyRequest(service.List!.requestSerialize({}))).toEqual({});
    expect(decodeEmptyRequest(Buffer.from([0x08, 0x96, 0x01, 0x12, 0x01, 0x41]))).toEqual({});
    expect(() => decodeEmptyRequest(Buffer.from([0x0a, 0x05]))).toThrow(/malformed request/);
    expect(() => decodeGetPodResourcesRequest(Buffer.from([0x0b]))).toThrow(/malformed request/);
  });
});
