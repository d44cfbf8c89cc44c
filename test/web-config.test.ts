import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { describe, expect, it } from 'vitest';
import { loadWebConfig, parseGoDuration } from '../src/config/web-config.js';
import { ExporterError } from '../src/errors.js';
import { makeTestPki } from './support/certs.js';

const pki = makeTestPki();
const dir = mkdtempSync(path.join(os.tmpdir(), 'kge-webcfg-'));
const HASH = bcrypt.hashSync('s3cret', 4);
let n = 0;

function write(text: string): string {
  const file = path.join(dir, `web-${n++}.yml`);
  writeFileSync(file, text);
  return file;
}

function errorOf(text: string): ExporterError {
  try {
    loadWebConfig(write(text));
  } catch (err) {
    expect(err).toBeInstanceOf(ExporterError);
    return err as ExporterError;
  }
  throw new Error('expected the web config to be refused');
}

const tls = (extra = '') => `tls_server_config:\n  cert_file: ${pki.server.certFile}\n  key_file: ${pki.server.keyFile}\n${extra}`;

describe('a valid web config', () => {
  it('loads the exporter toolkit\'s documented example shape: TLS, users, rate limit', () => {
    const cfg = loadWebConfig(write(`${tls()}basic_auth_users:\n  alice: ${HASH}\n  bob: '${HASH}'\nrate_limit:\n  interval: 1s\n  burst: 20\n`));
    expect(cfg.tls?.cert).toBe(pki.server.cert);
    expect(cfg.tls?.clientAuth).toBe('NoClientCert');
    expect(cfg.tls?.minVersion).toBe('TLSv1.2');
    expect([...cfg.users.keys()]).toEqual(['alice', 'bob']);
    expect(cfg.rateLimit).toEqual({ intervalMs: 1000, burst: 20 });
    expect(cfg.files).toEqual([expect.stringMatching(/web-\d+\.yml$/), pki.server.certFile, pki.server.keyFile]);
  });

  it('an empty file means plain HTTP and no auth', () => {
    const cfg = loadWebConfig(write(''));
    expect(cfg.tls).toBeUndefined();
    expect(cfg.users.size).toBe(0);
    expect(cfg.headers).toEqual([]);
  });

  it('takes relative file names from the config file\'s directory, and inline PEM', () => {
    const sub = mkdtempSync(path.join(dir, 'rel-'));
    writeFileSync(path.join(sub, 'c.crt'), pki.server.cert);
    writeFileSync(path.join(sub, 'k.key'), pki.server.key);
    const file = path.join(sub, 'web.yml');
    writeFileSync(file, 'tls_server_config:\n  cert_file: c.crt\n  key_file: k.key\n');
    expect(loadWebConfig(file).tls?.key).toBe(pki.server.key);
    const inline = loadWebConfig(write(`tls_server_config:\n  cert: |\n${indent(pki.server.cert)}\n  key: |\n${indent(pki.server.key)}\n  client_ca: |\n${indent(pki.ca.cert)}\n`));
    expect(inline.tls?.clientAuth).toBe('RequireAndVerifyClientCert'); // a CA with no type: verify, as the toolkit does
  });

  it('maps Go cipher suites, curves and versions to OpenSSL\'s', () => {
    const cfg = loadWebConfig(
      write(tls('  min_version: TLS13\n  max_version: TLS13\n  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256]\n  curve_preferences: [X25519, CurveP256]\n  prefer_server_cipher_suites: false\n')),
    );
    expect(cfg.tls).toMatchObject({ minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256', ecdhCurve: 'X25519:P-256', honorCipherOrder: false });
  });

  it('keeps the allowed security headers in their canonical spelling', () => {
    const cfg = loadWebConfig(write('http_server_config:\n  http2: false\n  headers:\n    x-frame-options: DENY\n    X-Content-Type-Options: nosniff\n    Strict-Transport-Security: max-age=31536000\n    X-XSS-Protection: ""\n'));
    expect(cfg.headers).toEqual([['X-Frame-Options', 'DENY'], ['X-Content-Type-Options', 'nosniff'], ['Strict-Transport-Security', 'max-age=31536000']]);
    expect(cfg.http2).toBe(false);
  });

  it('reads Go durations', () => {
    expect(parseGoDuration('1m30s')).toBe(90_000);
    expect(parseGoDuration('250ms')).toBe(250);
    expect(parseGoDuration('0')).toBe(0);
    expect(parseGoDuration('1x')).toBeUndefined();
    expect(parseGoDuration('')).toBeUndefined();
  });
});

function indent(s: string): string {
  return s.trim().split('\n').map((l) => `    ${l}`).join('\n');
}

describe('a bad web config is one error naming the field', () => {
  const cases: [string, string, RegExp][] = [
    ['unknown top-level key', 'tls_config: {}\n', /tls_config: unknown field/],
    ['unknown nested key', tls('  certfile: x\n'), /tls_server_config\.certfile: unknown field/],
    ['YAML syntax', 'basic_auth_users: [\n', /\(yaml\)/],
    ['duplicate key', `basic_auth_users:\n  a: ${HASH}\n  a: ${HASH}\n`, /\(yaml\).*unique/i],
    ['top level not a mapping', '- a\n- b\n', /\(top level\): must be a mapping/],
    ['wrong type', 'tls_server_config:\n  cert_file: [a]\n', /tls_server_config\.cert_file: must be a string/],
    ['certificate without key', `tls_server_config:\n  cert_file: ${pki.server.certFile}\n`, /tls_server_config\.key_file: missing/],
    ['key without certificate', `tls_server_config:\n  key_file: ${pki.server.keyFile}\n`, /tls_server_config\.cert_file: missing/],
    ['inline and file together', tls(`  cert: x\n`), /give either tls_server_config\.cert or tls_server_config\.cert_file/],
    ['unreadable file', 'tls_server_config:\n  cert_file: /nonexistent/server.crt\n  key_file: /nonexistent/server.key\n', /tls_server_config\.cert_file: cannot read \/nonexistent\/server\.crt/],
    ['key of another certificate', `tls_server_config:\n  cert_file: ${pki.server.certFile}\n  key_file: ${pki.client.keyFile}\n`, /tls_server_config: the certificate, key or CA is not usable/],
    ['not a certificate', `tls_server_config:\n  cert_file: ${pki.server.keyFile}\n  key_file: ${pki.server.keyFile}\n`, /not usable/],
    ['unknown client auth type', tls('  client_auth_type: Sometimes\n'), /client_auth_type: invalid value "Sometimes"; accepts NoClientCert, .*RequireAndVerifyClientCert/],
    ['verification without a CA', tls('  client_auth_type: RequireAndVerifyClientCert\n'), /client_ca_file: missing/],
    ['allowed SANs with a type that admits no certificate', tls(`  client_ca_file: ${pki.ca.certFile}\n  client_auth_type: VerifyClientCertIfGiven\n  client_allowed_sans: [a]\n`), /client_allowed_sans: needs client_auth_type/],
    ['unknown TLS version', tls('  min_version: TLS14\n'), /min_version: invalid value "TLS14"; accepts TLS10, TLS11, TLS12, TLS13/],
    ['min above max', tls('  min_version: TLS13\n  max_version: TLS12\n'), /min_version: is above max_version/],
    ['unknown cipher suite', tls('  cipher_suites: [TLS_FANCY]\n'), /cipher_suites: unknown cipher suite "TLS_FANCY"/],
    ['unsupported curve', tls('  curve_preferences: [X25519MLKEM768]\n'), /curve_preferences: unsupported curve "X25519MLKEM768"/],
    ['header not allowed', 'http_server_config:\n  headers:\n    Set-Cookie: a=b\n', /headers\.Set-Cookie: not a header a web config may set/],
    ['header value not allowed', 'http_server_config:\n  headers:\n    X-Frame-Options: allow-from x\n', /X-Frame-Options: invalid value "allow-from x"; accepts deny or sameorigin/],
    ['header value on two lines', 'http_server_config:\n  headers:\n    Content-Security-Policy: "a\\r\\nX-Evil: 1"\n', /Content-Security-Policy: must be a single line/],
    ['http2 not a boolean', 'http_server_config:\n  http2: maybe\n', /http_server_config\.http2: must be true or false/],
    ['plain-text password', 'basic_auth_users:\n  alice: hunter2\n', /basic_auth_users\.alice: is not a bcrypt hash/],
    ['user name with a colon', `basic_auth_users:\n  "a:b": ${HASH}\n`, /basic_auth_users\.a:b: a basic auth user name cannot contain ":"/],
    ['rate limit interval', 'rate_limit:\n  interval: soon\n  burst: 2\n', /rate_limit\.interval: must be a duration/],
    ['rate limit burst', 'rate_limit:\n  interval: 1s\n  burst: -1\n', /rate_limit\.burst: must be a whole number/],
  ];
  it.each(cases)('%s', (_what, text, pattern) => {
    const err = errorOf(text);
    expect(err.code).toBe('KGE_WEB_CONFIG_INVALID');
    expect(err.message).toMatch(/^web config \/.*web-\d+\.yml: /);
    expect(err.message).toMatch(pattern);
    expect(err.message).not.toContain('\n');
  });

  it('an unreadable config file names the file', () => {
    expect(() => loadWebConfig('/nonexistent/web.yml')).toThrow(/^web config \/nonexistent\/web\.yml: \(file\): cannot read it/);
  });
});

describe('fuzzed web configs', () => {
  const KEYS = ['tls_server_config', 'http_server_config', 'basic_auth_users', 'rate_limit', 'cert_file', 'key_file', 'client_ca_file', 'client_auth_type', 'min_version', 'headers', 'X-Frame-Options', 'interval', 'burst', 'alice', 'http2', 'cipher_suites', 'client_allowed_sans'];
  const SCALARS = ['', 'null', '~', 'true', '0', '-1', '1e309', '"\\u0000"', "'a:b'", '[]', '{}', '[1, [2]]', 'TLS13', 'RequireAnyClientCert', '1s', pki.server.certFile, pki.server.keyFile, HASH, '!!binary aGk=', '&a x', '*a', '"\\r\\n"', '日本', '"' + 'x'.repeat(5000) + '"'];
  function randomYaml(rand: () => number, depth: number): string {
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const lines: string[] = [];
    const n = 1 + Math.floor(rand() * 4);
    for (let i = 0; i < n; i++) {
      const key = pick(KEYS);
      if (depth < 3 && rand() < 0.5) {
        lines.push(`${key}:`);
        lines.push(...randomYaml(rand, depth + 1).split('\n').filter(Boolean).map((l) => `  ${l}`));
      } else lines.push(`${key}: ${pick(SCALARS)}`);
    }
    return lines.join('\n') + '\n';
  }

  it('1,000 random files either load or fail with one KGE_WEB_CONFIG_INVALID line', async () => {
    const { Prng } = await import('./support/prng.js');
    const prng = new Prng(2026);
    const rand = () => prng.next();
    let loaded = 0;
    for (let i = 0; i < 1000; i++) {
      const text = rand() < 0.1 ? Buffer.from(Array.from({ length: 64 }, () => Math.floor(rand() * 256))).toString('latin1') : randomYaml(rand, 0);
      try {
        loadWebConfig(write(text));
        loaded++;
      } catch (err) {
        expect(err, text).toBeInstanceOf(ExporterError);
        expect((err as ExporterError).code).toBe('KGE_WEB_CONFIG_INVALID');
        expect((err as ExporterError).message, text).not.toContain('\n');
      }
    }
    expect(loaded).toBeGreaterThan(0); // the generator also makes valid files
  });
});
