import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/**
 * The PodResourcesLister service as @grpc/proto-loader builds it from proto/podresources-v1.proto,
 * for the fake kubelet: its encoding is independent of the exporter's own hand-written decoder
 * (src/attribution/kubelet/podresources-codec.ts), so tests check one against the other.
 */
export const PROTO_FILE = 'podresources-v1.proto';

/** proto/ beside package.json, found from src/ or dist/src/. */
export function protoPath(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'proto', PROTO_FILE);
    if (existsSync(candidate)) return candidate;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`cannot find proto/${PROTO_FILE} above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

const LOAD_OPTIONS: protoLoader.Options = { keepCase: false, longs: String, enums: String, defaults: true, arrays: true };

let definition: grpc.ServiceDefinition | undefined;
/** The v1.PodResourcesLister service definition, loaded once from the .proto file. */
export function podResourcesService(): grpc.ServiceDefinition {
  if (!definition) {
    const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(protoPath(), LOAD_OPTIONS));
    const v1 = pkg.v1 as grpc.GrpcObject;
    definition = (v1.PodResourcesLister as grpc.ServiceClientConstructor).service;
  }
  return definition;
}
