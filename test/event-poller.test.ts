import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventPoller } from '../src/events/event-poller.js';
import type { FromEventWorker } from '../src/events/protocol.js';
import { NvmlBinding } from '../src/native/nvml-binding.js';
import { EventType } from '../src/native/nvml-constants.js';
import { fixtureScenario } from './support/fixture-scenario.js';
import { nvmlError } from './support/nvml-error.js';

/**
 * The event poller (what the sampling worker runs once a tick) through the real binding against
 * the simulated library, on a copy of test/fixtures/events.sim without its timed events: each
 * test appends the events and faults it needs, at times from now on.
 */
const scenario = fixtureScenario('events');
const base = scenario.original.replace(/^(event|fault) .*$/gm, '');
const XID = Number(EventType.XID_CRITICAL);
const G0 = 'GPU-11111111-2222-3333-4444-555555555555';
const G1 = 'GPU-66666666-7777-8888-9999-000000000000';

let nvml: NvmlBinding;
let t0 = 0;
/** Scenario time now, or a little ahead of it (its 0 is at or after t0). */
const simElapsed = (): number => performance.now() - t0;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  process.env.KGE_SIM_STATE = scenario.statePath;
  nvml = new NvmlBinding({ libraryPath: scenario.node.libraryPath });
  t0 = performance.now();
  nvml.init();
  await scenario.write(base);
});

afterAll(() => nvml.shutdown());

function poller(opts: Partial<ConstructorParameters<typeof EventPoller>[1]> = {}): { poller: EventPoller; sent: FromEventWorker[] } {
  const sent: FromEventWorker[] = [];
  return { poller: new EventPoller(nvml, { minBackoffMs: 1000, maxBackoffMs: 60_000, maxPerPoll: 256, ...opts }, (m) => sent.push(m)), sent };
}

const eventsIn = (sent: FromEventWorker[]) => sent.flatMap((m) => (m.type === 'event' ? [m.event] : []));

describe('event poller', () => {
  it('registers on its first poll, then takes at most maxPerPoll queued events a poll, each once, named by the registered GPU even once it is lost', async () => {
    const { poller: p, sent } = poller({ maxPerPoll: 2 });
    p.poll();
    expect(sent).toEqual([{ type: 'ready', registered: [{ index: 0, uuid: G0, types: 0x400b }, { index: 1, uuid: G1, types: 0x400b }], skipped: [] }]);
    // five events due together a little after the registration; GPU 0 falls off the bus as they come
    const at = Math.ceil(simElapsed()) + 100;
    await scenario.append(`event 0 xid 13 ${at}\nevent 0 xid 31 ${at}\nevent 1 xid 48 ${at}\nevent 0 dbe 0 ${at}\nevent 0 xid 79 ${at}\nfault * 0 15 ${at}\n`);
    const perPoll: number[] = [];
    const deadline = Date.now() + 10_000;
    while (eventsIn(sent).length < 5 && Date.now() < deadline) {
      const before = eventsIn(sent).length;
      p.poll();
      const got = eventsIn(sent).length - before;
      if (got > 0 || perPoll.length > 0) perPoll.push(got);
      else await sleep(20); // not due yet
    }
    p.poll();
    perPoll.push(eventsIn(sent).length - 5);
    expect(perPoll).toEqual([2, 2, 1, 0]);
    expect(eventsIn(sent).map((e) => [e.uuid, e.eventType, e.data])).toEqual([
      [G0, XID, 13],
      [G0, XID, 31],
      [G1, XID, 48],
      [G0, Number(EventType.DOUBLE_BIT_ECC), 0],
      [G0, XID, 79],
    ]);
    expect(nvmlError(() => nvml.uuid(nvml.deviceByIndex(0))).gpuLost).toBe(true); // the names came from the registration
    p.stop();
    expect(sent.at(-1)).toEqual({ type: 'stopped' });
    await scenario.write(base);
  });

  it('after a failed call, registers again only once the backoff has passed, doubling it until a poll succeeds', async () => {
    let now = 0;
    const { poller: p, sent } = poller({ now: () => now });
    const types = () => sent.map((m) => m.type);
    await scenario.append('fault nvmlEventSetCreate * 999 0 1000000000\n');
    p.poll();
    expect(types()).toEqual(['failed']);
    now = 999;
    p.poll();
    expect(types()).toEqual(['failed']); // still backing off: no call made
    now = 1000;
    p.poll();
    expect(types()).toEqual(['failed', 'failed']); // next backoff: 2 s
    now = 2999;
    p.poll();
    expect(types()).toHaveLength(2);
    now = 3000;
    p.poll();
    expect(types()).toHaveLength(3);
    await scenario.write(base);
    now = 7000; // 3000 + 4 s
    p.poll();
    expect(types()).toEqual(['failed', 'failed', 'failed', 'ready']);
    // a failing wait frees the set; the backoff starts again from its minimum after the good poll
    await scenario.append('fault nvmlEventSetWait_v2 * 999 0 1000000000\n');
    p.poll();
    expect(types().at(-1)).toBe('failed');
    expect(sent.at(-1)).toMatchObject({ error: expect.stringContaining('nvmlEventSetWait_v2') });
    await scenario.write(base);
    now += 999;
    p.poll();
    expect(types()).toHaveLength(5);
    now += 1;
    p.poll();
    expect(types()).toEqual(['failed', 'failed', 'failed', 'ready', 'failed', 'ready']);
    p.stop();
  });

  it('with no GPU that delivers events, reports none registered and looks again after the longest backoff; a stopped poller does nothing', async () => {
    let now = 0;
    const { poller: p, sent } = poller({ now: () => now, maxBackoffMs: 30_000 });
    await scenario.write(base.replace('gpu.*.events_supported 0x400B', 'gpu.*.events_supported 0'));
    p.poll();
    expect(sent).toEqual([{ type: 'ready', registered: [], skipped: [] }]);
    now = 29_999;
    p.poll();
    expect(sent).toHaveLength(1);
    now = 30_000;
    p.poll();
    expect(sent).toHaveLength(2);
    p.stop();
    p.stop();
    now = 120_000;
    p.poll();
    expect(sent.map((m) => m.type)).toEqual(['ready', 'ready', 'stopped']);
    await scenario.write(base);
  });
});
