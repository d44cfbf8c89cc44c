import { linkSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { PODRESOURCES_SERVER_SERVICE, type AllocatableResourcesResponseIn, type GetPodResourcesRequest, type ListPodResourcesResponseIn } from './podresources-encode.js';

/** What the fake kubelet answers: the exporter's decoded types, plus the fields it skips. */
export interface FakeKubeletResponses {
  list: ListPodResourcesResponseIn;
  allocatable: AllocatableResourcesResponseIn;
}

/**
 * A real gRPC server (@grpc/grpc-js) speaking the kubelet's PodResources API on a unix socket,
 * serving whatever responses it is given, encoded by src/sim/podresources-encode.ts (no .proto
 * loader: the service definition is written out there). Tests and `npm run demo` use it; tests
 * can also make List hang, make a call fail, or restart it on the same socket path (a kubelet
 * restart).
 */
export class FakeKubelet {
  private server: grpc.Server | undefined;
  private responses: FakeKubeletResponses;
  /** Milliseconds List waits before answering (longer than the client's deadline = a hang). */
  listDelayMs = 0;
  /** A gRPC status code List fails with, when set. */
  listFailure: grpc.status | undefined;
  /** A gRPC status code GetAllocatableResources fails with, when set (e.g. UNIMPLEMENTED). */
  allocatableFailure: grpc.status | undefined;
  readonly calls = { list: 0, allocatable: 0 };
  private readonly pending = new Set<NodeJS.Timeout>();

  private constructor(
    readonly socketPath: string,
    responses: FakeKubeletResponses,
  ) {
    this.responses = responses;
  }

  static async start(socketPath: string, responses: FakeKubeletResponses): Promise<FakeKubelet> {
    const k = new FakeKubelet(socketPath, responses);
    await k.listen();
    return k;
  }

  setResponses(responses: FakeKubeletResponses): void {
    this.responses = responses;
  }

  async listen(): Promise<void> {
    if (this.server) return;
    mkdirSync(path.dirname(this.socketPath), { recursive: true });
    rmSync(this.socketPath, { force: true });
    const server = new grpc.Server();
    server.addService(PODRESOURCES_SERVER_SERVICE, {
      List: (_call: grpc.ServerUnaryCall<object, ListPodResourcesResponseIn>, cb: grpc.sendUnaryData<ListPodResourcesResponseIn>) => {
        this.calls.list++;
        const answer = () => (this.listFailure !== undefined ? cb({ code: this.listFailure, details: 'fake kubelet failure' }) : cb(null, this.responses.list));
        if (this.listDelayMs <= 0) return answer();
        const t = setTimeout(() => {
          this.pending.delete(t);
          answer();
        }, this.listDelayMs);
        this.pending.add(t);
      },
      GetAllocatableResources: (_call: grpc.ServerUnaryCall<object, AllocatableResourcesResponseIn>, cb: grpc.sendUnaryData<AllocatableResourcesResponseIn>) => {
        this.calls.allocatable++;
        if (this.allocatableFailure !== undefined) cb({ code: this.allocatableFailure, details: 'fake kubelet failure' });
        else cb(null, this.responses.allocatable);
      },
      Get: (_call: grpc.ServerUnaryCall<GetPodResourcesRequest, object>, cb: grpc.sendUnaryData<object>) => cb({ code: grpc.status.UNIMPLEMENTED, details: 'not served by the fake kubelet' }),
    });
    await new Promise<void>((resolve, reject) => {
      server.bindAsync(`unix://${path.resolve(this.socketPath)}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve()));
    });
    this.server = server;
  }

  /** Stops serving and removes the socket (a kubelet that is down). */
  close(): Promise<void> {
    for (const t of this.pending) clearTimeout(t);
    this.pending.clear();
    const server = this.server;
    this.server = undefined;
    server?.forceShutdown(); // cancels calls in flight, as a dying kubelet would
    rmSync(this.socketPath, { force: true });
    return Promise.resolve();
  }

  /**
   * A kubelet that died without cleaning up: nothing serves, but the socket file stays
   * (connecting is refused rather than finding no file).
   */
  async crash(): Promise<void> {
    if (!this.server) return;
    const stale = `${this.socketPath}.stale`;
    rmSync(stale, { force: true });
    linkSync(this.socketPath, stale); // a second name for the socket outlives close()
    await this.close();
    renameSync(stale, this.socketPath);
  }

  /** A kubelet restart: the socket goes away and a new one appears at the same path. */
  async restart(): Promise<void> {
    await this.close();
    await this.listen();
  }
}
