import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { NodeSample } from '../src/sample.js';
import { newerSeq, SampleSlotReader, SampleSlotWriter, SamplerControl } from '../src/sampler/sample-slot.js';
import { notableKey } from '../src/sampler/notable.js';
import { startModuleWorker } from '../src/worker-thread.js';

/** A sample whose every GPU temperature is `n`: a torn read would mix two of them. */
function sampleOf(n: number, gpus = 8): NodeSample {
  return {
    takenAtMs: n,
    monotonicMs: n,
    driverVersion: '550.54.15',
    gpus: Array.from({ length: gpus }, (_, index) => ({ index, uuid: `GPU-${index}`, name: 'NVIDIA H100 80GB HBM3', pciBusId: `0000:0${index}:00.0`, minor: index, values: { gpuTempCelsius: n, powerUsageMilliwatts: n }, mig: [], processes: [] })),
    lostGpus: [],
    collectors: [{ name: 'temperature', success: true, durationSeconds: 0.001 }],
    tickSeconds: 0.001,
  };
}

describe('sample slot', () => {
  it('hands the reader each newer sample once, by sequence number', () => {
    const writer = new SampleSlotWriter();
    const reader = new SampleSlotReader(writer.shared);
    expect(reader.readNewerThan(0)).toBeUndefined(); // nothing yet
    const first = writer.publish(sampleOf(1));
    expect(first.newSlot).toBe(writer.shared); // the first sample names the slot
    const read = reader.readNewerThan(0);
    expect(read?.seq).toBe(first.seq);
    expect(read?.sample).toEqual(sampleOf(1));
    expect(reader.readNewerThan(first.seq)).toBeUndefined(); // the same one is not newer
    const second = writer.publish(sampleOf(2));
    expect(second.newSlot).toBeUndefined(); // handed over already
    expect(newerSeq(second.seq, first.seq)).toBe(true);
    expect(reader.readNewerThan(first.seq)?.sample.takenAtMs).toBe(2);
    // prepared but not committed: invisible to the reader
    const third = writer.prepare(sampleOf(3));
    expect(reader.readNewerThan(second.seq)).toBeUndefined();
    writer.commit(third);
    expect(reader.readNewerThan(second.seq)).toMatchObject({ seq: third.seq, sample: { takenAtMs: 3 } });
  });

  it('moves a sample that does not fit into a larger slot, handed over with it, and keeps counting there', () => {
    const writer = new SampleSlotWriter(1024);
    const small = writer.publish(sampleOf(1, 1));
    expect(writer.publish(sampleOf(1, 1)).newSlot).toBeUndefined();
    const big = writer.publish(sampleOf(2, 64));
    expect(big.newSlot).toBeInstanceOf(SharedArrayBuffer);
    expect(big.newSlot).not.toBe(small.newSlot);
    expect(big.newSlot!.byteLength).toBeGreaterThan(1024);
    const reader = new SampleSlotReader(big.newSlot!);
    expect(reader.readNewerThan(small.seq)?.sample.gpus).toHaveLength(64);
    const next = writer.publish(sampleOf(3, 64));
    expect(next.newSlot).toBeUndefined();
    expect(reader.readNewerThan(big.seq)?.sample.takenAtMs).toBe(3);
  });

  it('orders sequence numbers across the wrap at 2^31', () => {
    expect(newerSeq(2, 0)).toBe(true);
    expect(newerSeq(0, 2)).toBe(false);
    expect(newerSeq(-2147483646, 2147483646)).toBe(true);
    expect(newerSeq(4, 4)).toBe(false);
  });

  it('never hands out a torn sample while another thread writes as fast as it can', { timeout: 30_000 }, async () => {
    const stop = new Int32Array(new SharedArrayBuffer(4));
    const thread = startModuleWorker(import.meta.url, 'support/slot-writer', stop);
    const [shared] = (await once(thread, 'message')) as [SharedArrayBuffer];
    const reader = new SampleSlotReader(shared);
    let seq = 0;
    let whole = 0;
    const deadline = Date.now() + 20_000;
    while (whole < 2000 && Date.now() < deadline) {
      const read = reader.readNewerThan(seq);
      if (!read) continue;
      seq = read.seq;
      const n = read.sample.takenAtMs;
      expect(read.sample.gpus.map((g) => g.values.gpuTempCelsius)).toEqual(new Array(8).fill(n));
      whole++;
    }
    Atomics.store(stop, 0, 1);
    await thread.terminate();
    expect(whole).toBe(2000);
  });
});

describe('sampler control', () => {
  it('counts a running tick until it ends, then the ticks it kept from starting, never both', () => {
    const c = new SamplerControl();
    expect(c.snapshot()).toEqual({ inFlightSinceMs: undefined, skipped: 0 });
    c.tickStarted(1_000_000);
    expect(c.snapshot()).toEqual({ inFlightSinceMs: 1_000_000, skipped: 0 });
    c.tickEnded(3);
    expect(c.snapshot()).toEqual({ inFlightSinceMs: undefined, skipped: 3 });
    const other = new SamplerControl(c.shared); // the worker's view of the same words
    other.notify = true;
    expect(c.notify).toBe(true);
    other.tickStarted(2_000_000);
    expect(c.snapshot().inFlightSinceMs).toBe(2_000_000);
  });
});

describe('notable samples', () => {
  it('change with what the state log and the GPUs-seen view read, not with values', () => {
    const base = sampleOf(1);
    const key = notableKey(base);
    expect(notableKey(sampleOf(2))).toBe(key); // other readings only
    const variants: ((s: NodeSample) => void)[] = [
      (s) => (s.collectors[0]!.error = 'nvmlDeviceGetTemperature failed'),
      (s) => (s.gpus[3]!.unsupported = [{ collector: 'power', reason: 'NOT_SUPPORTED' }]),
      (s) => (s.lostGpus = [{ index: 3, uuid: 'GPU-3', error: 'GPU_IS_LOST' }]),
      (s) => s.gpus.pop(),
      (s) => (s.gpus[0]!.uuid = 'GPU-swapped'),
      (s) => (s.enumerationError = 'nvmlDeviceGetCount_v2 failed'),
      (s) => (s.missingSymbols = ['nvmlDeviceGetPowerUsage']),
    ];
    for (const change of variants) {
      const s = sampleOf(1);
      change(s);
      expect(notableKey(s)).not.toBe(key);
    }
  });
});

describe('sampler and its worker', () => {
  it('leave samples in shared memory: a message per sample only while something listens for each, latest always the newest', { timeout: 30_000 }, async () => {
    const pino = (await import('pino')).default;
    const { Sampler } = await import('../src/sampler/sampler.js');
    const { simulatedNode } = await import('../src/sim/harness.js');
    const node = simulatedNode('h100x8');
    process.env.KGE_SIM_STATE = node.statePath;
    const sampler = new Sampler({ intervalMs: 250, initRetryMs: 1000, libraryPath: node.libraryPath, collectors: {}, logger: pino({ level: 'silent' }) });
    // every sample message, whether the event loop or a read (which takes the queued ones first) handles it
    const messages = { notable: 0, other: 0 };
    const handler = sampler as unknown as { onSampleMessage(m: import('../src/sampler/protocol.js').FromWorkerSamples): void };
    const handle = handler.onSampleMessage.bind(sampler);
    handler.onSampleMessage = (m) => {
      if (m.type === 'sample') messages[m.notable ? 'notable' : 'other']++;
      handle(m);
    };
    sampler.start();
    try {
      const seen = new Set<number>();
      const deadline = Date.now() + 20_000;
      while (seen.size < 6 && Date.now() < deadline) {
        const s = sampler.latest;
        if (s) seen.add(s.takenAtMs);
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(seen.size).toBe(6);
      expect(messages.other).toBe(0);
      // the first sample is notable (everything changed); the steady ones after it come without a message
      expect(messages.notable).toBeGreaterThanOrEqual(1);
      expect(messages.notable).toBeLessThan(seen.size);
      const a = await sampler.nextSample();
      const b = await sampler.nextSample();
      expect(b.takenAtMs).toBeGreaterThan(a.takenAtMs);
      expect(messages.other).toBeGreaterThanOrEqual(1); // asked for: every sample as a message
      expect(sampler.latest!.takenAtMs).toBeGreaterThanOrEqual(b.takenAtMs);
    } finally {
      await sampler.stop();
    }
  });
});

describe('sampler ordering', () => {
  it('lets the observers see a notable sample before anyone can read it from the slot, even from a loop that never yields', { timeout: 30_000 }, async () => {
    const pino = (await import('pino')).default;
    const { Sampler } = await import('../src/sampler/sampler.js');
    const { fixtureScenario } = await import('./support/fixture-scenario.js');
    const { appendScenarioLines } = await import('../src/sim/scenario-file.js');
    const scenario = fixtureScenario('h100x8', { dir: 'scenarios' });
    process.env.KGE_SIM_STATE = scenario.statePath;
    const sampler = new Sampler({ intervalMs: 100, initRetryMs: 1000, libraryPath: scenario.node.libraryPath, collectors: {}, logger: pino({ level: 'silent' }) });
    const notable: NodeSample[] = [];
    sampler.on('notable', (s: NodeSample) => notable.push(s));
    sampler.start();
    try {
      const deadline = Date.now() + 20_000;
      while (sampler.latest?.gpus.length !== 8 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(sampler.latest?.gpus).toHaveLength(8);
      appendScenarioLines(scenario.statePath, '\nfault * 2 15 0\n'); // GPU 2 falls off the bus
      // a synchronous loop: no message can reach this thread through the event loop meanwhile
      let lost: NodeSample | undefined;
      while (!lost && Date.now() < deadline) {
        const s = sampler.latest;
        if (s && s.gpus.length === 7) lost = s;
      }
      expect(lost?.lostGpus.map((g) => g.index)).toEqual([2]);
      expect(notable.at(-1)).toBe(lost); // observed already, when it was read
    } finally {
      await sampler.stop();
    }
  });
});
