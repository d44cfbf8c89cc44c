import type { EventEmitter } from 'node:events';
import type { Logger } from 'pino';

/** How many uncaught exceptions within the window the exporter rides out before it exits. */
export interface CrashPolicy {
  maxUncaughtExceptions: number;
  windowMs: number;
}

export const DEFAULT_CRASH_POLICY: CrashPolicy = { maxUncaughtExceptions: 5, windowMs: 60_000 };

/** Longest wait for buffered log lines before the exit. */
const FLUSH_WAIT_MS = 1000;

/** Exit code when uncaught exceptions keep coming. */
export const EXIT_REPEATED_EXCEPTIONS = 1;

function errorFields(err: unknown): { err: string; stack?: string } {
  if (err instanceof Error) return err.stack ? { err: err.message, stack: err.stack } : { err: err.message };
  return { err: String(err) };
}

/**
 * The process-wide last resort, for errors that escaped every guard of the pipeline (the render
 * stage contains its own; these are bugs elsewhere):
 * - an unhandled promise rejection is logged; only that piece of work is lost, and the exporter
 *   keeps serving.
 * - an uncaught exception is logged, and the exporter keeps serving the last rendered /metrics;
 *   the N-th within the window (5 a minute by default) is taken as a broken process: logged as
 *   fatal, then `exit(1)`, so that the kubelet restarts the container.
 * Every line says which of the two happens next.
 */
export function installCrashHandlers(
  target: EventEmitter,
  logger: Logger,
  exit: (code: number, lastWords: string) => void,
  policy: CrashPolicy = DEFAULT_CRASH_POLICY,
  clock: () => number = Date.now,
): void {
  const recent: number[] = [];
  target.on('unhandledRejection', (reason: unknown) => {
    logger.error({ ...errorFields(reason) }, 'unhandled promise rejection: the work it belonged to is dropped; the exporter keeps serving');
  });
  target.on('uncaughtException', (err: unknown) => {
    const now = clock();
    recent.push(now);
    while (recent.length > 0 && now - recent[0]! > policy.windowMs) recent.shift();
    const fields = { ...errorFields(err), inWindow: recent.length, limit: policy.maxUncaughtExceptions, windowMs: policy.windowMs };
    if (recent.length < policy.maxUncaughtExceptions) {
      logger.error(fields, `uncaught exception: the exporter keeps serving; ${policy.maxUncaughtExceptions} within ${policy.windowMs / 1000} s end the process (exit ${EXIT_REPEATED_EXCEPTIONS})`);
      return;
    }
    const line = JSON.stringify({ level: 60, time: now, app: 'kube-gpu-exporter', ...fields, msg: `uncaught exception, ${recent.length} within ${policy.windowMs / 1000} s: exiting ${EXIT_REPEATED_EXCEPTIONS} so that the container is restarted` });
    // the lines logged before go out first; a stdout that never drains does not hold the exit up
    let exited = false;
    const go = (): void => {
      if (exited) return;
      exited = true;
      exit(EXIT_REPEATED_EXCEPTIONS, line);
    };
    setTimeout(go, FLUSH_WAIT_MS);
    logger.flush(go);
  });
}
