import { mkdtempSync } from 'node:fs';
import http2 from 'node:http2';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { GrpcCallError, GrpcUnaryClient } from '../src/attribution/kubelet/grpc-unary.js';

/**
 * The exporter's own gRPC client against servers that answer the way misbehaving or foreign
 * servers do, on a raw node:http2 server per test. Its happy path, deadlines, a missing socket
 * and a restarted server run against a real gRPC server in test/kubelet.test.ts.
 */
type Handler = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void;

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

async function serve(handler: Handler): Promise<string> {
  const sock = path.join(mkdtempSync(path.join(os.tmpdir(), 'kge-grpc-')), 'server.sock');
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    stream.on('error', () => undefined);
    // the request is read whole before the handler answers, as a gRPC server does
    stream.resume();
    stream.on('end', () => handler(stream, headers));
  });
  await new Promise<void>((resolve) => server.listen(sock, resolve));
  cleanups.push(() => server.close());
  return sock;
}

function client(sock: string, maxReceiveBytes = 1024): GrpcUnaryClient {
  const c = new GrpcUnaryClient(sock, { maxReceiveBytes });
  cleanups.push(() => c.close());
  return c;
}

function frame(message: Buffer, compressed = 0): Buffer {
  const head = Buffer.alloc(5);
  head[0] = compressed;
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/** An OK answer carrying `body` as sent (framed or not). */
function answer(body: Buffer): Handler {
  return (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(body);
  };
}

async function failure(p: Promise<unknown>): Promise<GrpcCallError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GrpcCallError);
  return err as GrpcCallError;
}

describe('the gRPC unary client', () => {
  it('sends one framed request with the gRPC headers and returns the one message of the answer', async () => {
    const seen: { headers?: http2.IncomingHttpHeaders } = {};
    const sock = await serve((stream, headers) => {
      seen.headers = headers;
      answer(frame(Buffer.from('hello')))(stream, headers);
    });
    const got = await client(sock).call('/v1.PodResourcesLister/List', Buffer.alloc(0), 2000);
    expect(got.toString()).toBe('hello');
    expect(seen.headers).toMatchObject({ ':method': 'POST', ':path': '/v1.PodResourcesLister/List', 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '2000m' });
  });

  it('reuses its connection for the next call', async () => {
    const sock = await serve(answer(frame(Buffer.from('x'))));
    const c = client(sock);
    await c.call('/a/B', Buffer.alloc(0), 2000);
    expect(c.connected).toBe(true);
    await c.call('/a/B', Buffer.alloc(0), 2000);
    expect(c.connected).toBe(true);
  });

  it('reports a trailers-only error with its status name and the decoded grpc-message', async () => {
    const sock = await serve((stream) => stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12', 'grpc-message': 'no%20such%20method' }, { endStream: true }));
    const err = await failure(client(sock).call('/a/B', Buffer.alloc(0), 2000));
    expect(err.message).toBe('UNIMPLEMENTED: no such method');
  });

  it('maps an HTTP error status and a server that is not gRPC', async () => {
    const notFound = await serve((stream) => stream.respond({ ':status': 404 }, { endStream: true }));
    expect((await failure(client(notFound).call('/a/B', Buffer.alloc(0), 2000))).message).toBe('UNIMPLEMENTED: HTTP status 404');
    const html = await serve((stream) => {
      stream.respond({ ':status': 200, 'content-type': 'text/html' });
      stream.end('<html></html>');
    });
    expect((await failure(client(html).call('/a/B', Buffer.alloc(0), 2000))).message).toBe('UNKNOWN: content-type "text/html" is not gRPC');
  });

  it('refuses an answer over its size limit, a compressed one, a truncated one and two messages', async () => {
    const big = await serve(answer(frame(Buffer.alloc(2048))));
    expect((await failure(client(big, 1024).call('/a/B', Buffer.alloc(0), 2000))).status).toBe('RESOURCE_EXHAUSTED');
    const compressed = await serve(answer(frame(Buffer.from('z'), 1)));
    expect((await failure(client(compressed).call('/a/B', Buffer.alloc(0), 2000))).message).toMatch(/^INTERNAL: compressed response message/);
    const truncated = await serve(answer(frame(Buffer.from('abcdef')).subarray(0, 8)));
    expect((await failure(client(truncated).call('/a/B', Buffer.alloc(0), 2000))).message).toBe('INTERNAL: truncated message frame (3 of 6 bytes)');
    const two = await serve(answer(Buffer.concat([frame(Buffer.from('a')), frame(Buffer.from('b'))])));
    expect((await failure(client(two).call('/a/B', Buffer.alloc(0), 2000))).message).toBe('INTERNAL: more than one response message in a unary call');
  });

  it('fails a call the server ends without a status', async () => {
    const sock = await serve((stream) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
      stream.end(frame(Buffer.from('x')));
    });
    expect((await failure(client(sock).call('/a/B', Buffer.alloc(0), 2000))).message).toBe('INTERNAL: the server closed the call without a status');
  });

  it('gives up at the deadline on a server that never answers, and says UNAVAILABLE where nothing listens', async () => {
    const sock = await serve(() => undefined);
    const err = await failure(client(sock).call('/a/B', Buffer.alloc(0), 150));
    expect(err.message).toBe('DEADLINE_EXCEEDED: no answer within 150 ms');
    const nobody = path.join(mkdtempSync(path.join(os.tmpdir(), 'kge-grpc-')), 'absent.sock');
    const gone = await failure(client(nobody).call('/a/B', Buffer.alloc(0), 2000));
    expect(gone.status).toBe('UNAVAILABLE');
    expect(gone.detail).toMatch(/ENOENT/);
  });
});
