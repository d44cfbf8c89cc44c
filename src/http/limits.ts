/** At most `max` requests in flight (0: no limit). */
export class ConcurrencyLimit {
  private inFlight = 0;

  constructor(private readonly max: number) {}

  /** Takes a slot; returns the function that gives it back, or undefined when all are taken. */
  acquire(): (() => void) | undefined {
    if (this.max > 0 && this.inFlight >= this.max) return undefined;
    this.inFlight++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inFlight--;
    };
  }

  get current(): number {
    return this.inFlight;
  }
}

/** A token bucket: `burst` requests at once, then one per `intervalMs`. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly intervalMs: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.last = now();
  }

  take(): boolean {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + (t - this.last) / this.intervalMs);
    this.last = t;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
