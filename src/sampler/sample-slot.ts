import { deserialize, serialize } from 'node:v8';
import type { NodeSample } from '../sample.js';

/**
 * Where the sampling worker leaves each sample for the main thread without waking it: shared
 * memory the worker writes after every tick and the main thread reads when it needs the newest
 * sample (a scrape, /readyz). Posting every sample as a message would wake the main thread once a
 * tick for a sample that most of the time nobody reads before the next one replaces it.
 *
 * The slot is a SharedArrayBuffer: two Int32 words (a sequence number, the byte length) and the
 * sample in V8's serialization format (what postMessage uses). The sequence is odd while the
 * worker writes and even after; a reader that sees the same even number before and after its
 * copy has a whole sample (a seqlock). The worker hands the slot over with the first sample, as a
 * message, and so a new, larger slot with a sample that does not fit the old one.
 */
const HEADER_BYTES = 8;
const SEQ = 0;
const LENGTH = 1;
/** Room for a sample of a large node to start with (the 8-GPU node's is about 17 KB). */
const INITIAL_BYTES = 64 * 1024;
/** Reads tried while the writer is mid-copy before the reader keeps what it has. */
const READ_TRIES = 4;

/** Whether sequence a is newer than b (sequences wrap around at 2^31). */
export function newerSeq(a: number, b: number): boolean {
  return ((a - b) | 0) > 0;
}

/** The worker's side: one writer per slot. */
export class SampleSlotWriter {
  private buffer: SharedArrayBuffer;
  private header: Int32Array;
  private bytes: Uint8Array;
  private seq = 0;
  /** Whether a prepared sample has named the slot yet. */
  private handedOver = false;

  constructor(initialBytes = INITIAL_BYTES) {
    this.buffer = new SharedArrayBuffer(HEADER_BYTES + initialBytes);
    this.header = new Int32Array(this.buffer, 0, 2);
    this.bytes = new Uint8Array(this.buffer, HEADER_BYTES);
  }

  /** The slot to hand to the reader. */
  get shared(): SharedArrayBuffer {
    return this.buffer;
  }

  /**
   * Serializes a sample for the slot: its sequence number once written, and `newSlot` when the
   * reader must be given a slot to read from this sample on: the first sample's, or a larger one
   * for a sample that does not fit (the old slot is not written again). Nothing is visible to the
   * reader until commit().
   */
  prepare(sample: NodeSample): PreparedSample {
    const data = serialize(sample);
    let newSlot: SharedArrayBuffer | undefined = this.handedOver ? undefined : this.buffer;
    if (data.length > this.bytes.length) {
      this.buffer = new SharedArrayBuffer(HEADER_BYTES + 2 ** Math.ceil(Math.log2(data.length * 2)));
      this.header = new Int32Array(this.buffer, 0, 2);
      this.bytes = new Uint8Array(this.buffer, HEADER_BYTES);
      Atomics.store(this.header, SEQ, this.seq);
      newSlot = this.buffer;
    }
    this.handedOver = true;
    return { data, seq: (this.seq + 2) | 0, ...(newSlot ? { newSlot } : {}) };
  }

  /** Makes a prepared sample (the last one prepared) the slot's newest. */
  commit(prepared: PreparedSample): void {
    Atomics.store(this.header, SEQ, (this.seq + 1) | 0);
    this.bytes.set(prepared.data);
    Atomics.store(this.header, LENGTH, prepared.data.length);
    this.seq = prepared.seq;
    Atomics.store(this.header, SEQ, this.seq);
  }

  /** prepare() and commit() in one. */
  publish(sample: NodeSample): PreparedSample {
    const prepared = this.prepare(sample);
    this.commit(prepared);
    return prepared;
  }
}

export interface PreparedSample {
  readonly data: Uint8Array;
  readonly seq: number;
  readonly newSlot?: SharedArrayBuffer;
}

/** The main thread's side. */
export class SampleSlotReader {
  private readonly header: Int32Array;
  private readonly bytes: Uint8Array;

  constructor(shared: SharedArrayBuffer) {
    this.header = new Int32Array(shared, 0, 2);
    this.bytes = new Uint8Array(shared, HEADER_BYTES);
  }

  /**
   * The newest sample when it is newer than `after` (a sequence number), with its number;
   * undefined when there is none newer or the writer was mid-copy on every try.
   */
  readNewerThan(after: number): { seq: number; sample: NodeSample } | undefined {
    for (let i = 0; i < READ_TRIES; i++) {
      const before = Atomics.load(this.header, SEQ);
      if (before === 0 || !newerSeq(before, after)) return undefined;
      if (before & 1) continue;
      const copy = this.bytes.slice(0, Atomics.load(this.header, LENGTH));
      if (Atomics.load(this.header, SEQ) !== before) continue;
      return { seq: before, sample: deserialize(copy) as NodeSample };
    }
    return undefined;
  }
}

/**
 * A few numbers both threads see, in shared memory the main thread creates: when the tick now
 * running started (0: none runs), the ticks skipped so far, and whether the main thread wants a
 * message per sample (a listener for each sample: tests, the demo).
 */
export class SamplerControl {
  private readonly words: BigInt64Array;

  constructor(readonly shared: SharedArrayBuffer = new SharedArrayBuffer(3 * 8)) {
    this.words = new BigInt64Array(shared);
  }

  /** Worker: a tick starts at wall-clock ms `atMs`. */
  tickStarted(atMs: number): void {
    Atomics.store(this.words, 0, BigInt(Math.max(1, Math.round(atMs))));
  }

  /** Worker: the tick ended, having kept `skipped` ticks from starting. The count moves before the start is cleared. */
  tickEnded(skipped: number): void {
    if (skipped > 0) Atomics.add(this.words, 1, BigInt(skipped));
    Atomics.store(this.words, 0, 0n);
  }

  /**
   * When the running tick started (undefined when none runs) and the ticks skipped before it, read
   * together: a tick that ends between the two reads is read again, so a count is never taken
   * twice (once as skipped, once as running).
   */
  snapshot(): { inFlightSinceMs: number | undefined; skipped: number } {
    for (;;) {
      const since = Atomics.load(this.words, 0);
      const skipped = Atomics.load(this.words, 1);
      if (Atomics.load(this.words, 0) !== since) continue;
      return { inFlightSinceMs: since === 0n ? undefined : Number(since), skipped: Number(skipped) };
    }
  }

  get notify(): boolean {
    return Atomics.load(this.words, 2) !== 0n;
  }

  set notify(on: boolean) {
    Atomics.store(this.words, 2, on ? 1n : 0n);
  }
}

/** Wall-clock ms on a clock both threads share and that does not step: the process's time origin plus monotonic time. */
export function sharedNowMs(): number {
  return performance.timeOrigin + performance.now();
}
