import { parseFlags, helpText, type Config } from './config/flags.js';
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

export async function run(config: Config): Promise<Exporter> {
  const logger = createLogger(config.logLevel);
  const exporter = new Exporter({ config, logger });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    exporter.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  try {
    await exporter.start();
  } catch (err) {
    logger.fatal({ err: err instanceof Error ? err.message : String(err) }, 'cannot start');
    process.exit(1);
  }
  return exporter;
}

