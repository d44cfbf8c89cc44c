import pino, { type Logger } from 'pino';
import type { LogLevel } from './config/flags.js';

/**
 * JSON lines on stdout, written synchronously: the exporter logs a few lines per change of state,
 * and a line written before an exit (the shutdown deadline, repeated uncaught exceptions) must
 * not be overtaken by the last words that exit writes itself.
 */
export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  return pino({ level, base: { app: 'kube-gpu-exporter' } }, destination ?? pino.destination({ sync: true }));
}
