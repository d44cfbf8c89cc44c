import type { Logger } from 'pino';
import type { NodeSample } from '../sample.js';

/**
 * Logs sampling problems once per change of state, never once per tick: a collector that
 * starts or stops failing, a collector a GPU does not support, enumeration failing, a stall,
 * missing driver symbols.
 */
export class StateChangeLog {
  private readonly collectorErrors = new Map<string, string | undefined>();
  /** "<uuid> <collector>" of every GPU and collector it does not support, as last seen. */
  private unsupported = new Set<string>();
  private enumerationError: string | undefined;
  private missingLogged = false;
  private stallLogged = false;
  private tickError: string | undefined;

  constructor(private readonly log: Logger) {}

  observe(sample: NodeSample): void {
    this.stallLogged = false;
    this.tickError = undefined;
    for (const c of sample.collectors) {
      const before = this.collectorErrors.get(c.name);
      if (c.error !== before) {
        if (c.error) this.log.warn({ collector: c.name, err: c.error }, 'collector failing');
        else if (before) this.log.info({ collector: c.name }, 'collector recovered');
      }
      this.collectorErrors.set(c.name, c.error);
    }
    const unsupportedNow = new Set<string>();
    for (const g of sample.gpus) {
      for (const u of g.unsupported ?? []) {
        const key = `${g.uuid} ${u.collector}`;
        unsupportedNow.add(key);
        if (!this.unsupported.has(key)) this.log.info({ gpu: g.index, uuid: g.uuid, collector: u.collector, reason: u.reason }, 'not supported on this GPU: the collector\'s metrics are absent for it');
      }
    }
    // a GPU that did not answer this tick keeps what was logged for it
    const notAnswering = new Set(sample.lostGpus.map((g) => g.uuid));
    for (const key of this.unsupported) if (notAnswering.has(key.slice(0, key.indexOf(' ')))) unsupportedNow.add(key);
    this.unsupported = unsupportedNow;
    // a GPU lost or back is logged by the health view (src/health/seen-gpus.ts), which also sees GPUs that drop off the list
    if (sample.enumerationError !== this.enumerationError) {
      if (sample.enumerationError) this.log.error({ err: sample.enumerationError }, 'cannot enumerate GPUs');
      else this.log.info('GPU enumeration recovered');
      this.enumerationError = sample.enumerationError;
    }
    if (!this.missingLogged && sample.missingSymbols?.length) {
      this.log.info({ symbols: sample.missingSymbols }, 'older driver: these NVML calls are absent, their values are not exported or use the older call');
      this.missingLogged = true;
    }
  }

  stalled(forMs: number): void {
    if (this.stallLogged) return;
    this.stallLogged = true;
    this.log.warn({ stalledForMs: forMs }, 'previous sampling tick still running (slow or hung NVML call); serving the last complete sample');
  }

  tickFailed(error: string): void {
    if (this.tickError === error) return;
    this.tickError = error;
    this.log.error({ err: error }, 'sampling tick failed');
  }
}
