import http, { type RequestListener } from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { secureContextOptions, type TlsSettings } from '../config/web-config.js';

export interface ListenerOptions {
  /** Undefined: plain HTTP. */
  tls: TlsSettings | undefined;
  /** Time a client has to send the request headers (and, with TLS, to finish the handshake). */
  headerTimeoutMs: number;
  /** Time a client has to send the whole request; also how long a connection may sit idle mid-request. */
  requestTimeoutMs: number;
}

/** The client certificate's subject alternative names, without their "DNS:", "IP Address:", ... prefixes. */
export function subjectAltNames(socket: TLSSocket): string[] {
  const san = socket.getPeerCertificate()?.subjectaltname ?? '';
  return san
    .split(/,\s*/)
    .map((entry) => entry.slice(entry.indexOf(':') + 1))
    .filter(Boolean);
}

/**
 * Whether a finished TLS handshake satisfies the client authentication policy. Node itself
 * refuses unverified certificates only for RequireAndVerifyClientCert; the other policies are
 * enforced here, before the connection may carry a request.
 */
export function clientAllowed(t: TlsSettings, socket: TLSSocket): boolean {
  const cert = socket.getPeerCertificate();
  const presented = cert !== null && typeof cert === 'object' && Object.keys(cert).length > 0;
  switch (t.clientAuth) {
    case 'NoClientCert':
    case 'RequestClientCert':
      return true;
    case 'RequireAnyClientCert':
      if (!presented) return false;
      break;
    case 'VerifyClientCertIfGiven':
      return !presented || socket.authorized;
    case 'RequireAndVerifyClientCert':
      if (!presented || !socket.authorized) return false;
      break;
  }
  if (t.clientAllowedSans.length === 0) return true;
  return subjectAltNames(socket).some((name) => t.clientAllowedSans.includes(name));
}

export interface Listener {
  server: http.Server;
  /** Puts new TLS settings (certificate, CA, client policy) in force for new connections. */
  applyTls(t: TlsSettings): void;
}

/** An HTTP or HTTPS server with timeouts against slow clients. */
export function createListener(handler: RequestListener, opts: ListenerOptions): Listener {
  const timeouts = {
    headersTimeout: opts.headerTimeoutMs,
    requestTimeout: opts.requestTimeoutMs,
    // how often Node checks connections against the two timeouts (its default is 30 s): a slow
    // client is closed within 1.5x the header timeout. Each check wakes the idle server: with the
    // default 10 s timeout, every 5 s.
    connectionsCheckingInterval: Math.max(100, Math.min(5000, Math.floor(opts.headerTimeoutMs / 2))),
  };
  let current = opts.tls;
  let server: http.Server;
  if (current) {
    const s = https.createServer({ ...secureContextOptions(current), ...timeouts, handshakeTimeout: opts.headerTimeoutMs }, handler);
    s.on('secureConnection', (socket: TLSSocket) => {
      if (current && !clientAllowed(current, socket)) socket.destroy();
    });
    // a failed handshake is the client's problem, not the server's: keep serving
    s.on('tlsClientError', () => {});
    server = s;
  } else {
    server = http.createServer(timeouts, handler);
  }
  server.timeout = opts.requestTimeoutMs;
  return {
    server,
    applyTls(t: TlsSettings): void {
      const s = server as https.Server & { requestCert: boolean; rejectUnauthorized: boolean };
      const options = secureContextOptions(t);
      s.setSecureContext(options);
      s.requestCert = options.requestCert;
      s.rejectUnauthorized = options.rejectUnauthorized;
      current = t;
    },
  };
}
