import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createSecureContext, type SecureVersion } from 'node:tls';
import { parseDocument } from 'yaml';
import { exporterError, ExporterError } from '../errors.js';

/**
 * The web config file (--web.config.file), in the format of the Prometheus exporter toolkit,
 * so a file written for node_exporter or Prometheus works unchanged: TLS (server certificate,
 * client certificates), basic auth users with bcrypt hashes, security headers, a rate limit.
 * Parsing is strict: an unknown key, a wrong type or a file that cannot be read is an error
 * that names the key.
 */

/** Go's crypto/tls client authentication policies, as the toolkit names them. */
export const CLIENT_AUTH_TYPES = ['NoClientCert', 'RequestClientCert', 'RequireAnyClientCert', 'VerifyClientCertIfGiven', 'RequireAndVerifyClientCert'] as const;
export type ClientAuthType = (typeof CLIENT_AUTH_TYPES)[number];

const TLS_VERSIONS: Record<string, SecureVersion> = { TLS10: 'TLSv1', TLS11: 'TLSv1.1', TLS12: 'TLSv1.2', TLS13: 'TLSv1.3' };
const VERSION_ORDER: readonly SecureVersion[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

/**
 * Go cipher suite names (TLS 1.2 and older) and their OpenSSL names. Go ignores the TLS 1.3
 * suites in cipher_suites (they are always on); so does the exporter.
 */
const CIPHER_SUITES: Record<string, string | null> = {
  TLS_RSA_WITH_AES_128_CBC_SHA: 'AES128-SHA',
  TLS_RSA_WITH_AES_256_CBC_SHA: 'AES256-SHA',
  TLS_RSA_WITH_AES_128_GCM_SHA256: 'AES128-GCM-SHA256',
  TLS_RSA_WITH_AES_256_GCM_SHA384: 'AES256-GCM-SHA384',
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: 'ECDHE-ECDSA-AES128-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA: 'ECDHE-ECDSA-AES256-SHA',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: 'ECDHE-RSA-AES128-SHA',
  TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: 'ECDHE-RSA-AES256-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 'ECDHE-ECDSA-AES128-GCM-SHA256',
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: 'ECDHE-ECDSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: 'ECDHE-RSA-AES128-GCM-SHA256',
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: 'ECDHE-RSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305: 'ECDHE-ECDSA-CHACHA20-POLY1305',
  TLS_AES_128_GCM_SHA256: null,
  TLS_AES_256_GCM_SHA384: null,
  TLS_CHACHA20_POLY1305_SHA256: null,
};

/** Go curve names and OpenSSL's. */
const CURVES: Record<string, string> = { CurveP256: 'P-256', CurveP384: 'P-384', CurveP521: 'P-521', X25519: 'X25519' };

/** Response headers the toolkit lets a web config set, with the values it accepts (undefined: any). */
const HEADERS: Record<string, readonly string[] | undefined> = {
  'content-security-policy': undefined,
  'x-frame-options': ['deny', 'sameorigin'],
  'x-content-type-options': ['nosniff'],
  'x-xss-protection': undefined,
  'strict-transport-security': undefined,
};
const HEADER_NAMES: Record<string, string> = {
  'content-security-policy': 'Content-Security-Policy',
  'x-frame-options': 'X-Frame-Options',
  'x-content-type-options': 'X-Content-Type-Options',
  'x-xss-protection': 'X-XSS-Protection',
  'strict-transport-security': 'Strict-Transport-Security',
};

/** bcrypt hashes as htpasswd -B and Go's bcrypt write them. */
const BCRYPT_HASH = /^\$2[abxy]?\$(\d\d)\$[./A-Za-z0-9]{53}$/;

export interface TlsSettings {
  /** PEM texts (read from the files, or given inline). */
  cert: string;
  key: string;
  clientCa: string | undefined;
  clientAuth: ClientAuthType;
  clientAllowedSans: string[];
  minVersion: SecureVersion;
  maxVersion: SecureVersion;
  /** OpenSSL cipher list for TLS 1.2 and older; undefined: Node's defaults. */
  ciphers: string | undefined;
  honorCipherOrder: boolean;
  /** OpenSSL curve list; undefined: Node's defaults. */
  ecdhCurve: string | undefined;
}

export interface WebConfig {
  /** Undefined: plain HTTP. */
  tls: TlsSettings | undefined;
  /** Header name (canonical case) and value, added to every response. */
  headers: [string, string][];
  /** User name -> bcrypt hash; empty: no basic auth. */
  users: Map<string, string>;
  /** Token bucket over all requests but the probes; undefined: no limit. */
  rateLimit: { intervalMs: number; burst: number } | undefined;
  http2: boolean;
  /** Every file the config was read from (the config itself first), to notice changes. */
  files: string[];
}

type Node = Record<string, unknown>;

class Fields {
  constructor(
    private readonly file: string,
    private readonly where: string,
    private readonly node: Node,
  ) {}

  static of(file: string, where: string, value: unknown): Fields {
    if (value === null || value === undefined) return new Fields(file, where, {});
    if (typeof value !== 'object' || Array.isArray(value)) throw fail(file, where || '(top level)', `must be a mapping, got ${describe(value)}`);
    return new Fields(file, where, value as Node);
  }

  allow(keys: readonly string[]): void {
    for (const k of Object.keys(this.node)) {
      if (!keys.includes(k)) throw fail(this.file, this.path(k), `unknown field (known: ${keys.join(', ')})`);
    }
  }

  path(key: string): string {
    return this.where ? `${this.where}.${key}` : key;
  }

  has(key: string): boolean {
    return this.node[key] !== undefined && this.node[key] !== null;
  }

  raw(key: string): unknown {
    return this.node[key];
  }

  string(key: string): string | undefined {
    const v = this.node[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw fail(this.file, this.path(key), `must be a string, got ${describe(v)}`);
    return v;
  }

  bool(key: string, dflt: boolean): boolean {
    const v = this.node[key];
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'boolean') throw fail(this.file, this.path(key), `must be true or false, got ${describe(v)}`);
    return v;
  }

  strings(key: string): string[] {
    const v = this.node[key];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw fail(this.file, this.path(key), `must be a list of strings, got ${describe(v)}`);
    return v as string[];
  }

  child(key: string): Fields {
    return Fields.of(this.file, this.path(key), this.node[key]);
  }

  entries(): [string, unknown][] {
    return Object.entries(this.node);
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return `${typeof v} ${JSON.stringify(v)}`;
}

function fail(file: string, where: string, what: string): ExporterError {
  return exporterError('KGE_WEB_CONFIG_INVALID', file, `${where}: ${what}`);
}

/** Go duration text ("1s", "500ms", "1m30s", "0") in milliseconds; undefined when malformed. */
export function parseGoDuration(raw: string): number | undefined {
  if (raw === '0') return 0;
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const part = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/y;
  let total = 0;
  let at = 0;
  while (at < raw.length) {
    part.lastIndex = at;
    const m = part.exec(raw);
    if (!m) return undefined;
    total += Number(m[1]) * units[m[2]!]!;
    at = part.lastIndex;
  }
  return raw.length ? total : undefined;
}

/**
 * Reads and checks a web config file. Relative file names inside it are taken from the config
 * file's directory, as the toolkit does. Throws an ExporterError (KGE_WEB_CONFIG_INVALID) that
 * names the file and the field.
 */
export function loadWebConfig(file: string): WebConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw fail(file, '(file)', `cannot read it: ${(err as Error).message}`);
  }
  return parseWebConfig(text, file);
}

export function parseWebConfig(text: string, file: string): WebConfig {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length) throw fail(file, '(yaml)', doc.errors[0]!.message.split('\n')[0]!);
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw fail(file, '(yaml)', (err as Error).message.split('\n')[0]!);
  }
  const top = Fields.of(file, '', value);
  top.allow(['tls_server_config', 'http_server_config', 'basic_auth_users', 'rate_limit']);
  const files = [file];
  const dir = path.dirname(path.resolve(file));
  const readPem = (f: Fields, key: string): string | undefined => {
    const name = f.string(key);
    if (name === undefined || name === '') return undefined;
    const full = path.resolve(dir, name);
    files.push(full);
    try {
      return readFileSync(full, 'utf8');
    } catch (err) {
      throw fail(file, f.path(key), `cannot read ${full}: ${(err as Error).message}`);
    }
  };

  const tls = parseTls(top.child('tls_server_config'), file, readPem);
  const httpServer = top.child('http_server_config');
  httpServer.allow(['http2', 'headers']);
  const http2 = httpServer.bool('http2', true);
  const headers: [string, string][] = [];
  const headerFields = httpServer.child('headers');
  for (const [name, value] of headerFields.entries()) {
    const lower = name.toLowerCase();
    if (!(lower in HEADERS)) throw fail(file, headerFields.path(name), `not a header a web config may set (allowed: ${Object.values(HEADER_NAMES).join(', ')})`);
    const v = headerFields.string(name) ?? '';
    if (v === '') continue;
    const allowed = HEADERS[lower];
    if (allowed && !allowed.includes(v.toLowerCase())) throw fail(file, headerFields.path(name), `invalid value ${JSON.stringify(v)}; accepts ${allowed.join(' or ')}`);
    if (/[\r\n]/.test(v)) throw fail(file, headerFields.path(name), 'must be a single line');
    headers.push([HEADER_NAMES[lower]!, v]);
  }

  const users = new Map<string, string>();
  const userFields = top.child('basic_auth_users');
  for (const [user] of userFields.entries()) {
    const hash = userFields.string(user) ?? '';
    if (user.includes(':')) throw fail(file, userFields.path(user), 'a basic auth user name cannot contain ":"');
    const m = BCRYPT_HASH.exec(hash);
    if (!m || Number(m[1]) < 4 || Number(m[1]) > 31) throw fail(file, userFields.path(user), 'is not a bcrypt hash (e.g. from htpasswd -nBC 10 "" | tr -d \':\\n\')');
    users.set(user, hash);
  }

  let rateLimit: WebConfig['rateLimit'];
  const rate = top.child('rate_limit');
  rate.allow(['interval', 'burst']);
  if (rate.has('interval') || rate.has('burst')) {
    const rawInterval = rate.raw('interval');
    const intervalMs = typeof rawInterval === 'string' ? parseGoDuration(rawInterval) : typeof rawInterval === 'number' && rawInterval === 0 ? 0 : undefined;
    if (intervalMs === undefined) throw fail(file, rate.path('interval'), `must be a duration such as 1s or 100ms, got ${describe(rawInterval)}`);
    const burst = rate.raw('burst') ?? 0;
    if (typeof burst !== 'number' || !Number.isInteger(burst) || burst < 0) throw fail(file, rate.path('burst'), `must be a whole number >= 0, got ${describe(burst)}`);
    if (intervalMs > 0) rateLimit = { intervalMs, burst: Math.max(1, burst) };
  }
  return { tls, headers, users, rateLimit, http2, files };
}

function parseTls(f: Fields, file: string, readPem: (f: Fields, key: string) => string | undefined): TlsSettings | undefined {
  f.allow([
    'cert', 'key', 'client_ca', 'cert_file', 'key_file', 'client_auth_type', 'client_ca_file', 'client_allowed_sans',
    'min_version', 'max_version', 'cipher_suites', 'prefer_server_cipher_suites', 'curve_preferences',
  ]);
  const inline = (key: string) => {
    const v = f.string(key);
    return v === '' ? undefined : v;
  };
  const exclusive = (a: string, b: string) => {
    if (inline(a) !== undefined && (f.string(b) ?? '') !== '') throw fail(file, f.path(a), `give either ${f.path(a)} or ${f.path(b)}, not both`);
  };
  exclusive('cert', 'cert_file');
  exclusive('key', 'key_file');
  exclusive('client_ca', 'client_ca_file');
  const cert = inline('cert') ?? readPem(f, 'cert_file');
  const key = inline('key') ?? readPem(f, 'key_file');
  const clientCa = inline('client_ca') ?? readPem(f, 'client_ca_file');
  const authRaw = f.string('client_auth_type');
  if (cert === undefined && key === undefined && clientCa === undefined && authRaw === undefined) return undefined;
  if (cert === undefined) throw fail(file, f.path('cert_file'), 'missing: TLS needs a server certificate (cert_file or cert)');
  if (key === undefined) throw fail(file, f.path('key_file'), 'missing: TLS needs the certificate\'s private key (key_file or key)');

  let clientAuth: ClientAuthType;
  if (authRaw === undefined || authRaw === '') clientAuth = clientCa !== undefined ? 'RequireAndVerifyClientCert' : 'NoClientCert';
  else if ((CLIENT_AUTH_TYPES as readonly string[]).includes(authRaw)) clientAuth = authRaw as ClientAuthType;
  else throw fail(file, f.path('client_auth_type'), `invalid value ${JSON.stringify(authRaw)}; accepts ${CLIENT_AUTH_TYPES.join(', ')}`);
  if ((clientAuth === 'VerifyClientCertIfGiven' || clientAuth === 'RequireAndVerifyClientCert') && clientCa === undefined) {
    throw fail(file, f.path('client_ca_file'), `missing: client_auth_type ${clientAuth} verifies client certificates against it`);
  }
  const clientAllowedSans = f.strings('client_allowed_sans');
  if (clientAllowedSans.length && clientAuth !== 'RequireAnyClientCert' && clientAuth !== 'RequireAndVerifyClientCert') {
    throw fail(file, f.path('client_allowed_sans'), 'needs client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert (other types let a client in without a certificate)');
  }

  const version = (key: string, dflt: SecureVersion): SecureVersion => {
    const raw = f.string(key);
    if (raw === undefined || raw === '') return dflt;
    const v = TLS_VERSIONS[raw];
    if (!v) throw fail(file, f.path(key), `invalid value ${JSON.stringify(raw)}; accepts ${Object.keys(TLS_VERSIONS).join(', ')}`);
    return v;
  };
  const minVersion = version('min_version', 'TLSv1.2');
  const maxVersion = version('max_version', 'TLSv1.3');
  if (VERSION_ORDER.indexOf(minVersion) > VERSION_ORDER.indexOf(maxVersion)) throw fail(file, f.path('min_version'), 'is above max_version');

  const ciphers: string[] = [];
  for (const name of f.strings('cipher_suites')) {
    if (!(name in CIPHER_SUITES)) throw fail(file, f.path('cipher_suites'), `unknown cipher suite ${JSON.stringify(name)} (Go names, e.g. TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)`);
    const openssl = CIPHER_SUITES[name];
    if (openssl) ciphers.push(openssl);
  }
  const curves = f.strings('curve_preferences').map((name) => {
    const c = CURVES[name];
    if (!c) throw fail(file, f.path('curve_preferences'), `unsupported curve ${JSON.stringify(name)}; accepts ${Object.keys(CURVES).join(', ')}`);
    return c;
  });
  const settings: TlsSettings = {
    cert, key, clientCa, clientAuth, clientAllowedSans, minVersion, maxVersion,
    ciphers: ciphers.length ? ciphers.join(':') : undefined,
    honorCipherOrder: f.bool('prefer_server_cipher_suites', true),
    ecdhCurve: curves.length ? curves.join(':') : undefined,
  };
  try {
    createSecureContext(secureContextOptions(settings));
  } catch (err) {
    throw fail(file, 'tls_server_config', `the certificate, key or CA is not usable: ${(err as Error).message}`);
  }
  return settings;
}

/** Options for tls.createSecureContext / Server#setSecureContext from checked settings. */
export function secureContextOptions(t: TlsSettings): import('node:tls').SecureContextOptions & { requestCert: boolean; rejectUnauthorized: boolean } {
  return {
    cert: t.cert,
    key: t.key,
    ...(t.clientCa !== undefined ? { ca: t.clientCa } : {}),
    minVersion: t.minVersion,
    maxVersion: t.maxVersion,
    ...(t.ciphers !== undefined ? { ciphers: t.ciphers } : {}),
    honorCipherOrder: t.honorCipherOrder,
    ...(t.ecdhCurve !== undefined ? { ecdhCurve: t.ecdhCurve } : {}),
    requestCert: t.clientAuth !== 'NoClientCert',
    rejectUnauthorized: t.clientAuth === 'RequireAndVerifyClientCert',
  };
}
