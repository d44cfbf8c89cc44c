import { writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Writes `<dir>/kubeconfig.yaml`, pointing a Kubernetes client at a fake API server without
 * credentials, and returns its path. The client refuses plain HTTP unless TLS verification is
 * off, so it is.
 */
export function writeFakeKubeconfig(dir: string, server: string): string {
  const file = path.join(dir, 'kubeconfig.yaml');
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      'current-context': 'sim',
      clusters: [{ name: 'sim', cluster: { server, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'sim', user: {} }],
      contexts: [{ name: 'sim', context: { cluster: 'sim', user: 'sim' } }],
    }),
  );
  return file;
}
