import type { Logger } from 'pino';
import { labelString, type RenderFamily } from './exposition.js';
import { EXPORTER_FAMILIES } from './families.js';
import { DeviceRenderError, type RenderContext } from './render-context.js';
import type { ScrapeCache } from './scrape-cache.js';

/** One entry of the render stage: the families of one concern, from the render context. */
export interface FamilyBuilder {
  /** The `builder` label of kube_gpu_exporter_render_failures_total. */
  readonly name: string;
  build(ctx: RenderContext): RenderFamily[] | Promise<RenderFamily[]>;
}

/** Steps of the stage that are not family builders, guarded and counted the same way. */
export const CONTEXT_STEP = 'context';
export const ATTRIBUTION_STEP = 'attribution';
export const EXPOSITION_STEP = 'exposition';

interface StepState {
  failures: number;
  failing: boolean;
}

/**
 * Checks the shape of what a builder returned, so that a builder that returns something else
 * fails in its own guard instead of breaking the exposition of every family.
 */
function checked(out: unknown): RenderFamily[] {
  if (!Array.isArray(out)) throw new Error(`returned ${typeof out}, not a list of families`);
  for (const f of out as RenderFamily[]) {
    if (typeof f?.name !== 'string' || typeof f.help !== 'string' || !Array.isArray(f.series)) throw new Error(`returned a malformed family ${JSON.stringify(f?.name)}`);
    for (const s of f.series) {
      if (typeof s?.labels !== 'string' || typeof s.value !== 'number') throw new Error(`family ${f.name} has a series that is not { labels: string, value: number }`);
    }
  }
  return out as RenderFamily[];
}

function describe(err: unknown): { err: string; device?: string } {
  if (err instanceof DeviceRenderError) return { err: err.message, device: err.device };
  return { err: err instanceof Error ? err.message : String(err) };
}

/**
 * Guards the steps of a render: a step that throws is counted, logged once when it starts
 * failing (with the device it failed on where known) and once when it recovers, and its caller
 * gets the fallback (its last good output). Nothing a step throws leaves the guard.
 */
export class StepGuard {
  private readonly steps = new Map<string, StepState>();

  constructor(
    names: readonly string[],
    private readonly log: Logger,
  ) {
    for (const name of names) this.steps.set(name, { failures: 0, failing: false });
  }

  run<T>(name: string, step: () => T, fallback: T): T {
    try {
      const out = step();
      this.succeeded(name);
      return out;
    } catch (err) {
      this.failed(name, err);
      return fallback;
    }
  }

  async runAsync<T>(name: string, step: () => T | Promise<T>, fallback: T): Promise<T> {
    try {
      const out = await step();
      this.succeeded(name);
      return out;
    } catch (err) {
      this.failed(name, err);
      return fallback;
    }
  }

  /** Failures per step since start, every step listed from 0. */
  failureCounts(): [string, number][] {
    return [...this.steps].map(([name, s]) => [name, s.failures]);
  }

  private state(name: string): StepState {
    let s = this.steps.get(name);
    if (!s) this.steps.set(name, (s = { failures: 0, failing: false }));
    return s;
  }

  private succeeded(name: string): void {
    const s = this.state(name);
    if (!s.failing) return;
    s.failing = false;
    this.log.info({ builder: name, failures: s.failures }, 'render step recovered');
  }

  private failed(name: string, err: unknown): void {
    const s = this.state(name);
    s.failures++;
    if (s.failing) return;
    s.failing = true;
    this.log.error({ builder: name, ...describe(err) }, 'render step failing; its last good series are served, the rest of /metrics is rendered as usual');
  }
}

/**
 * The render stage: for a sample, the context (built once), every registered family builder in
 * its own guard, the stage's own failure counter, then the exposition into the scrape cache.
 * A sample only marks the cache out of date (invalidate); the first scrape after it renders
 * (fresh), and every scrape meanwhile waits for that one render. One render runs at a time;
 * samples that arrive meanwhile coalesce into the newest, so a slow render never queues up work,
 * and a failed one never blocks those after it. A scrape waits for the sample that was newest
 * when it came, not for every later one: renders slower than the sampling interval would
 * otherwise keep it waiting for ever.
 */
export class RenderStage {
  readonly guard: StepGuard;
  private readonly lastGood = new Map<string, RenderFamily[]>();
  private lastContext: RenderContext | undefined;
  private pending: (() => RenderContext) | undefined;
  private running: Promise<void> | undefined;
  /** Contexts noted so far, and the number of the newest one served. */
  private noted = 0;
  private served = 0;
  /** Scrapes waiting for the context numbered `upTo` (or a newer one) to be served. */
  private waiters: { upTo: number; resolve: () => void }[] = [];

  constructor(
    private readonly builders: readonly FamilyBuilder[],
    private readonly cache: ScrapeCache,
    log: Logger,
    /** The series budget: which families are exported, by name (all when left out). */
    private readonly keep?: (familyName: string) => boolean,
  ) {
    const names = [CONTEXT_STEP, ATTRIBUTION_STEP, ...builders.map((b) => b.name), EXPOSITION_STEP];
    if (new Set(names).size !== names.length) throw new Error(`render steps must have distinct names: ${names.join(', ')}`);
    this.guard = new StepGuard(names, log);
  }

  /**
   * Renders the context the factory builds (it is called when this render's turn comes). Resolves
   * when the newest context asked for so far is served; never rejects.
   */
  render(context: () => RenderContext): Promise<void> {
    this.invalidate(context);
    return this.fresh();
  }

  /**
   * Notes that a newer context is there to render, without rendering it: the next fresh() does,
   * so that a sample nobody scrapes costs no render.
   */
  invalidate(context: () => RenderContext): void {
    this.pending = context;
    this.noted++;
  }

  /** Resolves once the context that is newest now is served (at once when it already is); never rejects. */
  fresh(): Promise<void> {
    const upTo = this.noted;
    if (this.served >= upTo) return Promise.resolve();
    const served = new Promise<void>((resolve) => this.waiters.push({ upTo, resolve }));
    this.running ??= this.drain();
    return served;
  }

  /** Renders the newest pending context while a scrape waits for one; samples nobody waits for stay unrendered. */
  private async drain(): Promise<void> {
    try {
      while (this.pending && this.waiters.length > 0) {
        const next = this.pending;
        const upTo = this.noted;
        this.pending = undefined;
        try {
          await this.renderOnce(next);
        } finally {
          // a failed render is served too: its steps kept their last good output
          this.served = upTo;
          const still: { upTo: number; resolve: () => void }[] = [];
          for (const w of this.waiters) (w.upTo <= upTo ? w.resolve : () => still.push(w))();
          this.waiters = still;
        }
      }
    } finally {
      this.running = undefined;
    }
  }

  private async renderOnce(makeContext: () => RenderContext): Promise<void> {
    const ctx = this.guard.run(CONTEXT_STEP, makeContext, this.lastContext);
    if (ctx) this.lastContext = ctx;
    const families: RenderFamily[] = [];
    for (const b of this.builders) {
      const last = this.lastGood.get(b.name) ?? [];
      const out = ctx ? await this.guard.runAsync(b.name, async () => checked(await b.build(ctx)), last) : last;
      if (out !== last) this.lastGood.set(b.name, out);
      for (const f of out) families.push(f);
    }
    families.push(this.failuresFamily());
    const keep = this.keep;
    const exported = keep ? families.filter((f) => keep(f.name)) : families;
    await this.guard.runAsync(EXPOSITION_STEP, () => this.cache.update(exported), undefined);
  }

  private failuresFamily(): RenderFamily {
    const def = EXPORTER_FAMILIES.renderFailures;
    return {
      name: def.name,
      type: def.type,
      help: def.help,
      series: this.guard.failureCounts().map(([builder, n]) => ({ labels: labelString([['builder', builder]]), value: n })),
    };
  }
}
