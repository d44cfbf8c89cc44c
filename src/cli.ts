import { writeSync } from 'node:fs';
import { parseFlags, helpText, type Config } from './config/flags.js';
import { installCrashHandlers } from './crash-handlers.js';
import { ExporterError } from './errors.js';
import { Exporter } from './exporter.js';
import { createLogger } from './logger.js';
import { VERSION } from './version.js';

/** Parses flags; prints one line and exits 2 on a bad one. */
export function configFromArgs(argv: readonly string[]): Config {
  try {
    const r = parseFlags(argv);
    if (r.kind === 'help') {
      process.stdout.write(helpText() + '\n');
      process.exit(0);
    }
    if (r.kind === 'version') {
      process.stdout.write(`kube-gpu-exporter ${VERSION}\n`);
      process.exit(0);
    }
    return r.config;
  } catch (err) {
    if (err instanceof ExporterError) {
      process.stderr.write(`kube-gpu-exporter: ${err.message} [${err.code}]\n`);
      process.exit(2);
    }
    throw err;
  }
}

/**
 * Exits now, even with the sampling thread stuck inside a hung NVML call: a normal exit waits for
 * every thread to finish, so this calls libc's _exit (koffi is loaded here only for that).
 */
async function exitNow(code: number, lastWords: string): Promise<never> {
  writeSync(1, lastWords + '\n');
  try {
    const { default: koffi } = await import('koffi');
    const exit = koffi.load('libc.so.6').func('void _exit(int)') as (c: number) => void;
    exit(code);
  } catch {
    /* no libc to call: fall back to the normal exit */
  }
  process.exit(code);
}

/**
 * Starts the exporter. SIGTERM and SIGINT stop it cleanly (scrapes in flight finish, sampling
 * ends, NVML is shut down) and exit 0; a stop that takes longer than
 * --shutdown-timeout (an NVML call hanging, a client that never finishes) exits 1 at the deadline.
 * SIGHUP re-reads the web config file. Errors that escape every guard are logged and ridden
 * out, up to a limit (src/crash-handlers.ts).
 */
export async function run(config: Config): Promise<Exporter> {
  const logger = createLogger(config.logLevel);
  installCrashHandlers(process, logger, (code, lastWords) => void exitNow(code, lastWords));
  let exporter: Exporter;
  try {
    exporter = new Exporter({ config, logger });
  } catch (err) {
    if (err instanceof ExporterError) {
      process.stderr.write(`kube-gpu-exporter: ${err.message} [${err.code}]\n`);
      process.exit(2);
    }
    throw err;
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    const startedAt = Date.now();
    logger.info({ signal, timeoutMs: config.shutdownTimeoutMs }, 'shutting down');
    const deadline = setTimeout(() => {
      exporter.dropConnections();
      const line = { level: 50, time: Date.now(), app: 'kube-gpu-exporter', afterMs: Date.now() - startedAt, msg: 'shutdown did not finish within --shutdown-timeout (an NVML call or a client still busy); exiting anyway' };
      logger.flush();
      void exitNow(1, JSON.stringify(line));
    }, config.shutdownTimeoutMs);
    exporter.stop().then(
      () => {
        clearTimeout(deadline);
        logger.info({ tookMs: Date.now() - startedAt }, 'stopped');
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err: err instanceof Error ? err.message : String(err) }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    if (!exporter.webConfig) logger.info('SIGHUP: no --web.config.file to re-read');
    else if (!exporter.webConfig.check()) logger.info({ file: exporter.webConfig.file }, 'SIGHUP: web config unchanged or rejected');
  });
  try {
    await exporter.start();
  } catch (err) {
    logger.fatal({ err: err instanceof Error ? err.message : String(err) }, 'cannot start');
    process.exit(1);
  }
  return exporter;
}
