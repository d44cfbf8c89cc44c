import { once, EventEmitter } from 'node:events';
import path from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { installCrashHandlers } from '../src/crash-handlers.js';
import { simulatedNode } from '../src/sim/harness.js';
import { ROOT, scrape, seriesOf, startExporterProcess, waitFor, type RunningExporter } from './support/exporter-process.js';

/** Errors that escape every guard: a rejection is ridden out, uncaught exceptions up to a limit. */

function logCapture(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({}, sink), lines };
}

describe('crash handlers', () => {
  it('log an unhandled rejection and keep going', () => {
    const { logger, lines } = logCapture();
    const target = new EventEmitter();
    const exits: number[] = [];
    installCrashHandlers(target, logger, (code) => exits.push(code));
    target.emit('unhandledRejection', new Error('lost'));
    expect(exits).toEqual([]);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 50, err: 'lost', msg: expect.stringContaining('the exporter keeps serving') });
  });

  it('ride out uncaught exceptions below the limit, and exit 1 on the one that reaches it within the window', () => {
    const { logger, lines } = logCapture();
    const target = new EventEmitter();
    const exits: { code: number; lastWords: string }[] = [];
    let now = 0;
    installCrashHandlers(target, logger, (code, lastWords) => exits.push({ code, lastWords }), { maxUncaughtExceptions: 3, windowMs: 60_000 }, () => now);
    target.emit('uncaughtException', new Error('one'));
    now = 30_000;
    target.emit('uncaughtException', new Error('two'));
    now = 61_000; // 'one' left the window: two in it
    target.emit('uncaughtException', new Error('three'));
    expect(exits).toEqual([]);
    expect(lines.map((l) => l.inWindow)).toEqual([1, 2, 2]);
    expect(lines[0]!.msg).toBe('uncaught exception: the exporter keeps serving; 3 within 60 s end the process (exit 1)');
    now = 62_000;
    target.emit('uncaughtException', new Error('four'));
    expect(exits).toHaveLength(1);
    expect(exits[0]!.code).toBe(1);
    expect(JSON.parse(exits[0]!.lastWords)).toMatchObject({ level: 60, err: 'four', inWindow: 3, msg: 'uncaught exception, 3 within 60 s: exiting 1 so that the container is restarted' });
  });
});

describe('the exporter process', () => {
  let exp: RunningExporter | undefined;
  afterAll(async () => {
    await exp?.stop();
  });

  it('keeps serving after an unhandled rejection and uncaught exceptions, and exits 1 at the fifth within a minute', async () => {
    const node = simulatedNode('workstation');
    exp = await startExporterProcess({
      library: node.libraryPath,
      statePath: node.statePath,
      args: ['--kubelet.socket=none', '--sample-interval=100ms'],
      preload: [path.join(ROOT, 'test/support/fault-trigger.ts')],
      stdin: true,
    });
    const { child } = exp;
    await waitFor(async () => (await fetch(`${exp!.url}/readyz`)).status === 200, 15_000, 'readyz');
    const logged = (msg: string): Record<string, unknown>[] =>
      exp!.logs().flatMap((l) => {
        try {
          const r = JSON.parse(l) as Record<string, unknown>;
          return String(r.msg).startsWith(msg) ? [r] : [];
        } catch {
          return [];
        }
      });
    const sampleTime = (t: string): number => seriesOf(t, 'kube_gpu_exporter_last_sample_timestamp_seconds')[0]?.value ?? 0;

    child.stdin!.write('reject\n');
    await waitFor(() => logged('unhandled promise rejection').length === 1, 10_000, 'the rejection logged');
    child.stdin!.write('throw\n');
    await waitFor(() => logged('uncaught exception').length === 1, 10_000, 'the exception logged');
    expect(logged('uncaught exception')[0]).toMatchObject({ err: 'test: thrown from a timer', inWindow: 1 });
    // still sampling, rendering and serving
    const t0 = sampleTime(await scrape(exp.url));
    await waitFor(async () => sampleTime(await scrape(exp!.url)) > t0, 10_000, 'a newer sample after the exception');
    expect(child.exitCode).toBeNull();

    const exited = once(child, 'exit') as Promise<[number | null]>;
    for (let i = 0; i < 4; i++) child.stdin!.write('throw\n');
    const [code] = await exited;
    expect(code).toBe(1);
    expect(logged('uncaught exception').map((r) => r.inWindow)).toEqual([1, 2, 3, 4, 5]);
    expect(logged('uncaught exception').at(-1)).toMatchObject({ level: 60, msg: 'uncaught exception, 5 within 60 s: exiting 1 so that the container is restarted' });
  }, 40_000);
});
