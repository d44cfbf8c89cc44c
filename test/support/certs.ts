import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Pem {
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
}

export interface TestPki {
  dir: string;
  ca: Pem;
  /** Server certificate for localhost / 127.0.0.1, signed by `ca`. */
  server: Pem;
  /** A second server certificate (same names, same CA), for rotation tests. */
  serverRotated: Pem;
  /** Client certificate with SAN DNS:scraper.example, signed by `ca`. */
  client: Pem;
  /** Client certificate with SAN DNS:intruder.example, signed by `ca`. */
  otherClient: Pem;
  /** A CA of its own and a client certificate it signed (not trusted by the server). */
  strangerCa: Pem;
  strangerClient: Pem;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

function pem(dir: string, name: string): Pem {
  const certFile = path.join(dir, `${name}.crt`);
  const keyFile = path.join(dir, `${name}.key`);
  return { certFile, keyFile, cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
}

function makeCa(dir: string, name: string): Pem {
  openssl(dir, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.crt`]);
  return pem(dir, name);
}

function makeLeaf(dir: string, name: string, ca: string, san: string, usage: 'serverAuth' | 'clientAuth'): Pem {
  writeFileSync(path.join(dir, `${name}.ext`), `subjectAltName=${san}\nextendedKeyUsage=${usage}\nbasicConstraints=CA:FALSE\n`);
  openssl(dir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`]);
  openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-days', '2', '-extfile', `${name}.ext`, '-out', `${name}.crt`]);
  return pem(dir, name);
}

/** A throwaway PKI made with the openssl command in a temporary directory. */
export function makeTestPki(): TestPki {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kge-pki-'));
  const ca = makeCa(dir, 'ca');
  const strangerCa = makeCa(dir, 'stranger-ca');
  return {
    dir,
    ca,
    server: makeLeaf(dir, 'server', 'ca', 'DNS:localhost,IP:127.0.0.1', 'serverAuth'),
    serverRotated: makeLeaf(dir, 'server-rotated', 'ca', 'DNS:localhost,IP:127.0.0.1', 'serverAuth'),
    client: makeLeaf(dir, 'client', 'ca', 'DNS:scraper.example', 'clientAuth'),
    otherClient: makeLeaf(dir, 'other-client', 'ca', 'DNS:intruder.example', 'clientAuth'),
    strangerCa,
    strangerClient: makeLeaf(dir, 'stranger-client', 'stranger-ca', 'DNS:scraper.example', 'clientAuth'),
  };
}
