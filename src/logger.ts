import pino, { type Logger } from 'pino';
import type { LogLevel } from './config/flags.js';

/** JSON lines on stdout. */
export function createLogger(level: LogLevel, destination?: pino.DestinationStream): Logger {
  return pino({ level, base: { app: 'kube-gpu-exporter' } }, destination ?? pino.destination({ sync: false }));
}
