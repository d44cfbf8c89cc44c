import { expect } from 'vitest';
import { NvmlError } from '../../src/native/nvml-return.js';

/** The NvmlError a call throws; fails the test when it throws nothing or something else. */
export function nvmlError(fn: () => unknown): NvmlError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(NvmlError);
    return err as NvmlError;
  }
  throw new Error('expected an NvmlError');
}
