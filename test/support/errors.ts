import { ExporterError } from '../../src/errors.js';

/** The ExporterError that `fn` throws; anything else it throws, or nothing thrown, fails the test. */
export function errorOf(fn: () => unknown): ExporterError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ExporterError) return err;
    throw err;
  }
  throw new Error('expected an ExporterError');
}
