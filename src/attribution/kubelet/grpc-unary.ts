import http2 from 'node:http2';
import net from 'node:net';

/**
 * A gRPC client for unary calls on a unix socket, written on node:http2: the kubelet's
 * PodResources API needs nothing more (no streaming, no compression, no TLS, no name
 * resolution, no load balancing). A general gRPC library costs the exporter several
 * milliseconds of CPU per call in its JavaScript layers, and the exporter makes two calls
 * every refresh on every node, so this file speaks the wire protocol itself: a POST with
 * `content-type: application/grpc` and `te: trailers`, the request in one length-prefixed
 * frame, the answer in one, the status in `grpc-status` (a trailer, or a header when the
 * server answers with trailers only).
 */

/** gRPC status codes by number (the names are what errors report). */
const STATUS_NAMES = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
] as const;
export type GrpcStatusName = (typeof STATUS_NAMES)[number];

/** The name of a gRPC status code; a code outside the table keeps its number. */
export function grpcStatusName(code: number): string {
  return STATUS_NAMES[code] ?? String(code);
}

/** A gRPC call that did not answer OK: the status name and what the server (or the transport) said. */
export class GrpcCallError extends Error {
  constructor(
    readonly status: string,
    readonly detail: string,
  ) {
    super(`${status}: ${detail}`);
    this.name = 'GrpcCallError';
  }
}

/** The status an HTTP status other than 200 maps to (gRPC's HTTP-to-gRPC status mapping). */
function statusOfHttp(httpStatus: number): GrpcStatusName {
  switch (httpStatus) {
    case 400:
      return 'INTERNAL';
    case 401:
      return 'UNAUTHENTICATED';
    case 403:
      return 'PERMISSION_DENIED';
    case 404:
      return 'UNIMPLEMENTED';
    case 429:
    case 502:
    case 503:
    case 504:
      return 'UNAVAILABLE';
    default:
      return 'UNKNOWN';
  }
}

/** grpc-message is percent-encoded; a malformed one is shown as sent. */
function decodeGrpcMessage(raw: string | string[] | undefined): string {
  const text = Array.isArray(raw) ? raw.join(', ') : (raw ?? '');
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** The one message of a unary answer, from its length-prefixed frames. */
function singleMessage(body: Buffer): Buffer {
  if (body.length < 5) throw new GrpcCallError('INTERNAL', body.length ? `truncated message frame (${body.length} bytes)` : 'no response message');
  if (body[0] !== 0) throw new GrpcCallError('INTERNAL', 'compressed response message, although the call asked for identity encoding');
  const length = body.readUInt32BE(1);
  if (5 + length !== body.length) {
    throw new GrpcCallError('INTERNAL', 5 + length > body.length ? `truncated message frame (${body.length - 5} of ${length} bytes)` : 'more than one response message in a unary call');
  }
  return body.subarray(5);
}

export interface GrpcUnaryClientOptions {
  /** Answers larger than this fail with RESOURCE_EXHAUSTED. */
  maxReceiveBytes: number;
}

/** HTTP/2 flow-control window for the answers: large lists arrive without a round trip per 64 KiB. */
const RECEIVE_WINDOW_BYTES = 4 * 1024 * 1024;

/**
 * Unary calls over one HTTP/2 connection to a unix socket, dialled on the first call and again
 * after the connection closes or close() drops it. The connection does not keep the process
 * alive.
 */
export class GrpcUnaryClient {
  private session: http2.ClientHttp2Session | undefined;

  constructor(
    readonly socketPath: string,
    private readonly opts: GrpcUnaryClientOptions,
  ) {}

  /** Whether a connection is open (the next call reuses it). */
  get connected(): boolean {
    return this.session !== undefined && !this.session.closed && !this.session.destroyed;
  }

  /** Closes the connection; calls in flight fail, the next call dials again. */
  close(): void {
    const session = this.session;
    this.session = undefined;
    session?.destroy();
  }

  /**
   * Calls `method` (`/package.Service/Method`) with the encoded request and resolves with the
   * encoded answer; rejects with a GrpcCallError (UNAVAILABLE when the socket cannot be reached,
   * DEADLINE_EXCEEDED after deadlineMs).
   */
  call(method: string, request: Buffer, deadlineMs: number): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      let settled = false;
      const chunks: Buffer[] = [];
      let received = 0;
      let status: number | undefined;
      let statusMessage = '';
      let stream: http2.ClientHttp2Stream | undefined;
      const finish = (err: GrpcCallError | undefined, body?: Buffer): void => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        if (err) {
          if (stream && !stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
          reject(err);
        } else resolve(body!);
      };
      const deadline = setTimeout(() => finish(new GrpcCallError('DEADLINE_EXCEEDED', `no answer within ${deadlineMs} ms`)), deadlineMs);
      const noteStatus = (headers: http2.IncomingHttpHeaders): void => {
        const raw = headers['grpc-status'];
        if (raw === undefined) return;
        status = Number(Array.isArray(raw) ? raw[0] : raw);
        statusMessage = decodeGrpcMessage(headers['grpc-message']);
      };
      try {
        const session = this.connect();
        stream = session.request({
          ':method': 'POST',
          ':path': method,
          'content-type': 'application/grpc',
          te: 'trailers',
          'grpc-timeout': `${Math.max(1, Math.ceil(deadlineMs))}m`,
          'grpc-accept-encoding': 'identity',
          'user-agent': 'kube-gpu-exporter',
        });
      } catch (err) {
        finish(new GrpcCallError('UNAVAILABLE', (err as Error).message));
        return;
      }
      const s = stream;
      s.on('response', (headers) => {
        const httpStatus = Number(headers[':status']);
        noteStatus(headers); // trailers-only answer
        if (httpStatus !== 200 && status === undefined) {
          finish(new GrpcCallError(statusOfHttp(httpStatus), `HTTP status ${httpStatus}`));
          return;
        }
        const type = String(headers['content-type'] ?? '');
        if (status === undefined && !type.startsWith('application/grpc')) finish(new GrpcCallError('UNKNOWN', `content-type ${JSON.stringify(type)} is not gRPC`));
      });
      s.on('trailers', noteStatus);
      s.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received > this.opts.maxReceiveBytes + 5) {
          finish(new GrpcCallError('RESOURCE_EXHAUSTED', `answer larger than ${this.opts.maxReceiveBytes} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      s.on('error', (err: Error) => finish(new GrpcCallError('UNAVAILABLE', err.message)));
      s.on('close', () => {
        if (status === undefined) {
          const code = s.rstCode;
          finish(new GrpcCallError(code === http2.constants.NGHTTP2_REFUSED_STREAM ? 'UNAVAILABLE' : 'INTERNAL', code ? `stream reset by the server (HTTP/2 error ${code})` : 'the server closed the call without a status'));
          return;
        }
        if (status !== 0) {
          finish(new GrpcCallError(grpcStatusName(status), statusMessage || 'no message'));
          return;
        }
        try {
          finish(undefined, singleMessage(Buffer.concat(chunks, received)));
        } catch (err) {
          finish(err as GrpcCallError);
        }
      });
      s.end(frameOf(request));
    });
  }

  private connect(): http2.ClientHttp2Session {
    if (this.session && this.connected) return this.session;
    const socketPath = this.socketPath;
    const session = http2.connect('http://localhost', {
      createConnection: () => net.connect(socketPath),
      settings: { initialWindowSize: RECEIVE_WINDOW_BYTES, enablePush: false },
    });
    session.on('connect', () => session.setLocalWindowSize(RECEIVE_WINDOW_BYTES));
    // errors reach the calls on their streams; the session is dropped when it closes
    session.on('error', () => undefined);
    session.on('close', () => {
      if (this.session === session) this.session = undefined;
    });
    session.on('goaway', () => {
      if (this.session === session) this.session = undefined;
    });
    session.unref();
    this.session = session;
    return session;
  }
}

/** The request in one length-prefixed, uncompressed frame. */
function frameOf(message: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(5 + message.length);
  frame[0] = 0;
  frame.writeUInt32BE(message.length, 1);
  message.copy(frame, 5);
  return frame;
}
