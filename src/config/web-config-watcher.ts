import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { exporterError } from '../errors.js';
import { loadWebConfig, type WebConfig } from './web-config.js';

/** What the exporter's own metrics say about the web config. */
export interface WebConfigStatus {
  lastReloadSuccessful: boolean;
  lastSuccessMs: number;
}

/** A digest of every file a config was read from: a change to any of them is a change. */
function fingerprint(files: readonly string[]): string {
  const h = createHash('sha256');
  for (const f of files) {
    h.update(f).update('\0');
    try {
      h.update(readFileSync(f));
    } catch (err) {
      h.update(`unreadable: ${(err as NodeJS.ErrnoException).code ?? ''}`);
    }
    h.update('\0');
  }
  return h.digest('hex');
}

/**
 * Holds the web config in force and re-reads it when the file, or a certificate, key or CA it
 * names, changes (checked every `pollMs`, and on `check()`, e.g. at SIGHUP). A change that does
 * not load keeps the last good config and is logged once; 'change' is emitted with a new good one.
 */
export class WebConfigWatcher extends EventEmitter {
  current: WebConfig;
  private lastFingerprint: string;
  private timer: NodeJS.Timeout | undefined;
  /** Why the last change was refused (cleared by a change that loads). */
  rejected: Error | undefined;
  readonly status: WebConfigStatus;

  /** Loads the file; throws the ExporterError that names what is wrong with it. */
  constructor(
    readonly file: string,
    private readonly logger: Logger,
    private readonly pollMs = 5000,
  ) {
    super();
    this.current = loadWebConfig(file);
    this.lastFingerprint = fingerprint(this.current.files);
    this.status = { lastReloadSuccessful: true, lastSuccessMs: Date.now() };
  }

  start(): void {
    this.timer ??= setInterval(() => this.check(), this.pollMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Re-reads the config if a file changed. Returns whether a new config took effect. */
  check(): boolean {
    const files = this.rejected === undefined ? this.current.files : [this.file, ...this.current.files.slice(1)];
    const now = fingerprint(files);
    if (now === this.lastFingerprint && this.rejected === undefined) return false;
    let next: WebConfig;
    try {
      next = loadWebConfig(this.file);
      if ((next.tls === undefined) !== (this.current.tls === undefined)) {
        throw exporterError('KGE_WEB_CONFIG_TLS_SWITCH', this.file, this.current.tls ? 'HTTPS' : 'HTTP');
      }
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      this.lastFingerprint = now;
      this.status.lastReloadSuccessful = false;
      if (error.message !== this.rejected?.message) this.logger.error({ err: error.message, file: this.file }, 'web config change rejected; keeping the last good config');
      this.rejected = error;
      return false;
    }
    const nextFingerprint = fingerprint(next.files);
    if (nextFingerprint === this.lastFingerprint && this.rejected === undefined) return false;
    this.current = next;
    this.lastFingerprint = nextFingerprint;
    this.rejected = undefined;
    this.status.lastReloadSuccessful = true;
    this.status.lastSuccessMs = Date.now();
    this.logger.info({ file: this.file, tls: next.tls !== undefined, users: next.users.size }, 'web config reloaded');
    this.emit('change', next);
    return true;
  }
}
