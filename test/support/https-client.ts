import https from 'node:https';
import type { PeerCertificate, TLSSocket } from 'node:tls';

export interface TlsResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  /** The certificate the server presented. */
  serverCert: PeerCertificate;
}

export interface TlsRequestOptions {
  ca?: string;
  cert?: string;
  key?: string;
  auth?: string;
  method?: string;
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  maxVersion?: 'TLSv1.2' | 'TLSv1.3';
  /** Reuse connections of this agent instead of a fresh connection per request. */
  agent?: https.Agent;
}

/** One HTTPS request on a fresh connection (a real TLS handshake each time). */
export function httpsRequest(port: number, path: string, opts: TlsRequestOptions = {}): Promise<TlsResponse> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1', port, path, method: opts.method ?? 'GET', agent: opts.agent ?? false, servername: 'localhost',
        ca: opts.ca, cert: opts.cert, key: opts.key,
        ...(opts.minVersion ? { minVersion: opts.minVersion } : {}),
        ...(opts.maxVersion ? { maxVersion: opts.maxVersion } : {}),
        headers: opts.auth ? { Authorization: `Basic ${Buffer.from(opts.auth).toString('base64')}` } : {},
      },
      (res) => {
        const serverCert = (res.socket as TLSSocket).getPeerCertificate();
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, serverCert }));
      },
    );
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('request timed out')));
    req.end();
  });
}
