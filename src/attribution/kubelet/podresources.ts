import { GrpcCallError, GrpcUnaryClient } from './grpc-unary.js';
import {
  decodeAllocatableResourcesResponse,
  decodeListPodResourcesResponse,
  EMPTY_REQUEST,
  type AllocatableResourcesResponse,
  type ListPodResourcesResponse,
} from './podresources-codec.js';

export type {
  AllocatableResourcesResponse,
  ClaimResource,
  ContainerDevices,
  ContainerResources,
  DynamicResource,
  ListPodResourcesResponse,
  PodResources,
} from './podresources-codec.js';

/** The kubelet's own limit is generous; pods with many devices make large responses. */
export const MAX_RECEIVE_BYTES = 16 * 1024 * 1024;

/**
 * A decoder for answers that seldom change between refreshes: a response byte for byte the same
 * as the last one is not decoded again, the last (never modified) object comes back, and the
 * device map source, handed the same objects, keeps the map it built from them. On a node with
 * 1,000 pods that is most of a refresh's work.
 */
export function decodeUnlessUnchanged<Res>(decode: (buf: Buffer) => Res): (buf: Buffer) => Res {
  let lastBytes: Buffer | undefined;
  let last: Res | undefined;
  return (buf) => {
    if (lastBytes !== undefined && lastBytes.equals(buf)) return last as Res;
    const res = decode(buf);
    lastBytes = Buffer.from(buf);
    last = res;
    return res;
  };
}

/** A failed kubelet call, with the gRPC status name when there is one. */
export class KubeletCallError extends Error {
  constructor(
    readonly call: string,
    readonly status: string,
    detail: string,
  ) {
    super(`kubelet ${call}: ${status}: ${detail}`);
    this.name = 'KubeletCallError';
  }
}

/**
 * A client of the kubelet's PodResources API (v1.PodResourcesLister) on its unix socket. Every
 * call has a deadline. After a failed call the connection is dropped and the next call dials
 * again, so a kubelet restart (a new socket at the same path) is picked up at the next call.
 * Each client decodes with its own decodeUnlessUnchanged pair.
 */
export class PodResourcesClient {
  private readonly grpc: GrpcUnaryClient;
  private readonly decodeList = decodeUnlessUnchanged(decodeListPodResourcesResponse);
  private readonly decodeAllocatable = decodeUnlessUnchanged(decodeAllocatableResourcesResponse);

  constructor(
    readonly socketPath: string,
    private readonly deadlineMs: number,
  ) {
    this.grpc = new GrpcUnaryClient(socketPath, { maxReceiveBytes: MAX_RECEIVE_BYTES });
  }

  list(): Promise<ListPodResourcesResponse> {
    return this.call('List', this.decodeList);
  }

  allocatable(): Promise<AllocatableResourcesResponse> {
    return this.call('GetAllocatableResources', this.decodeAllocatable);
  }

  close(): void {
    this.grpc.close();
  }

  private call<Res>(name: string, decode: (buf: Buffer) => Res): Promise<Res> {
    const reused = this.grpc.connected;
    return this.attempt(name, decode).catch((err: unknown) => {
      // A connection made before a kubelet restart fails once with UNAVAILABLE: dial again.
      if (reused && err instanceof KubeletCallError && err.status === 'UNAVAILABLE') return this.attempt(name, decode);
      throw err;
    });
  }

  private async attempt<Res>(name: string, decode: (buf: Buffer) => Res): Promise<Res> {
    let answer: Buffer;
    try {
      answer = await this.grpc.call(`/v1.PodResourcesLister/${name}`, EMPTY_REQUEST, this.deadlineMs);
    } catch (err) {
      this.close();
      if (err instanceof GrpcCallError) throw new KubeletCallError(name, err.status, err.detail);
      throw new KubeletCallError(name, 'CLIENT', (err as Error).message);
    }
    try {
      return decode(answer);
    } catch (err) {
      throw new KubeletCallError(name, 'INTERNAL', (err as Error).message);
    }
  }
}
