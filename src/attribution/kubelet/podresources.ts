import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
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

function clientOnly(): never {
  throw new Error('the exporter only calls the PodResources API; it does not serve it');
}

function unaryMethod<Res>(name: string, decode: (buf: Buffer) => Res): grpc.MethodDefinition<object, Res> {
  return {
    path: `/v1.PodResourcesLister/${name}`,
    requestStream: false,
    responseStream: false,
    requestSerialize: () => EMPTY_REQUEST,
    requestDeserialize: clientOnly,
    responseSerialize: clientOnly,
    responseDeserialize: decode,
  };
}

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

/** The two calls of v1.PodResourcesLister the exporter makes, with the hand-written decoders (one pair per client). */
function podResourcesService(): grpc.ServiceDefinition {
  return {
    List: unaryMethod('List', decodeUnlessUnchanged(decodeListPodResourcesResponse)),
    GetAllocatableResources: unaryMethod('GetAllocatableResources', decodeUnlessUnchanged(decodeAllocatableResourcesResponse)),
  };
}

type Unary<Res> = (req: object, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Res) => void) => grpc.ClientUnaryCall;
interface PodResourcesStub extends grpc.Client {
  List: Unary<ListPodResourcesResponse>;
  GetAllocatableResources: Unary<AllocatableResourcesResponse>;
}

type Invoke<Res> = (stub: PodResourcesStub, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Res) => void) => void;

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
 * A client of the kubelet's PodResources API on its unix socket. Every call has a deadline.
 * After a failed call the channel is dropped and the next call dials again, so a kubelet
 * restart (a new socket at the same path) is picked up at the next call.
 */
export class PodResourcesClient {
  private stub: PodResourcesStub | undefined;
  private readonly service = podResourcesService();

  constructor(
    readonly socketPath: string,
    private readonly deadlineMs: number,
  ) {}

  list(): Promise<ListPodResourcesResponse> {
    return this.call('List', (stub, opts, cb) => stub.List({}, opts, cb));
  }

  allocatable(): Promise<AllocatableResourcesResponse> {
    return this.call('GetAllocatableResources', (stub, opts, cb) => stub.GetAllocatableResources({}, opts, cb));
  }

  close(): void {
    this.stub?.close();
    this.stub = undefined;
  }

  private connect(): PodResourcesStub {
    if (!this.stub) {
      const Ctor = grpc.makeGenericClientConstructor(this.service, 'PodResourcesLister');
      this.stub = new Ctor(`unix://${path.resolve(this.socketPath)}`, grpc.credentials.createInsecure(), {
        'grpc.max_receive_message_length': MAX_RECEIVE_BYTES,
        'grpc.enable_retries': 0,
      }) as unknown as PodResourcesStub;
    }
    return this.stub;
  }

  private call<Res>(name: string, invoke: Invoke<Res>): Promise<Res> {
    const reused = this.stub !== undefined;
    return this.attempt(name, invoke).catch((err: unknown) => {
      // A channel dialled before a kubelet restart fails once with UNAVAILABLE: dial again.
      if (reused && err instanceof KubeletCallError && err.status === 'UNAVAILABLE') return this.attempt(name, invoke);
      throw err;
    });
  }

  private attempt<Res>(name: string, invoke: Invoke<Res>): Promise<Res> {
    let stub: PodResourcesStub;
    try {
      stub = this.connect();
    } catch (err) {
      return Promise.reject(new KubeletCallError(name, 'CLIENT', (err as Error).message));
    }
    return new Promise<Res>((resolve, reject) => {
      invoke(stub, { deadline: Date.now() + this.deadlineMs }, (err, res) => {
        if (err || !res) {
          this.close();
          const status = err ? (grpc.status[err.code] ?? String(err.code)) : 'EMPTY';
          reject(new KubeletCallError(name, status, err?.details || err?.message || 'no response'));
          return;
        }
        resolve(res);
      });
    });
  }
}
