/**
 * Loaded before the exporter (`node --import`) by tests of the process-wide crash handlers: each
 * line on standard input throws outside every guard of the exporter, as a bug would.
 *   reject  an unhandled promise rejection
 *   throw   an uncaught exception (thrown from a timer)
 */
import { createInterface } from 'node:readline';

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const what = line.trim();
  if (what === 'reject') void Promise.reject(new Error('test: a promise nobody awaits rejected'));
  if (what === 'throw') {
    setImmediate(() => {
      throw new Error('test: thrown from a timer');
    });
  }
});
