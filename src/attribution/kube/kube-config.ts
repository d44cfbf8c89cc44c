/**
 * Configuration of the Kubernetes client for the optional API watches (pod metadata, DRA
 * ResourceSlices). Only imported by modules that are themselves loaded on demand: importing
 * `@kubernetes/client-node` costs about 40 MB of resident memory.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type * as K8s from '@kubernetes/client-node';

export type K8sModule = typeof import('@kubernetes/client-node');

export interface KubeConnection {
  k8s: K8sModule;
  config: K8s.KubeConfig;
  /** The API server's URL, for messages. */
  server: string;
}

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/**
 * A kubeconfig from, in order: `server` used as is without credentials (tests, `kubectl
 * proxy`), the kubeconfig file, the pod's service account, the default kubeconfig.
 */
export async function connectKube(opts: { kubeconfigPath?: string | undefined; server?: string | undefined }): Promise<KubeConnection> {
  const k8s = await import('@kubernetes/client-node');
  const kc = new k8s.KubeConfig();
  const { server, kubeconfigPath } = opts;
  if (server !== undefined) {
    const plainHttp = new URL(server).protocol === 'http:';
    kc.loadFromOptions({
      clusters: [{ name: 'direct', server: server.replace(/\/+$/, ''), skipTLSVerify: plainHttp }],
      users: [{ name: 'anonymous' }],
      contexts: [{ name: 'direct', cluster: 'direct', user: 'anonymous' }],
      currentContext: 'direct',
    });
  } else if (kubeconfigPath !== undefined) {
    kc.loadFromFile(kubeconfigPath);
  } else if (process.env['KUBERNETES_SERVICE_HOST'] && fs.existsSync(SERVICE_ACCOUNT_TOKEN)) {
    kc.loadFromCluster();
  } else if (process.env['KUBECONFIG'] || fs.existsSync(path.join(os.homedir(), '.kube', 'config'))) {
    kc.loadFromDefault();
  } else {
    throw new Error('not running in a pod (no KUBERNETES_SERVICE_HOST or service account token) and no kubeconfig (KUBECONFIG, ~/.kube/config)');
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error(`no current cluster in the kubeconfig (context "${kc.getCurrentContext()}")`);
  return { k8s, config: kc, server: cluster.server };
}

/** Request options that make a generated API call abortable with `signal`. */
export function withSignal(k8s: K8sModule, signal: AbortSignal): K8s.ConfigurationOptions {
  const middleware: K8s.ObservableMiddleware = {
    pre: (ctx) => {
      ctx.setSignal(signal);
      return new k8s.Observable(Promise.resolve(ctx));
    },
    post: (res) => new k8s.Observable(Promise.resolve(res)),
  };
  return { middleware: [middleware], middlewareMergeStrategy: 'append' };
}
