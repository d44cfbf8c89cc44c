import { describe, expect, it } from 'vitest';
import { readiness } from '../src/http/readiness.js';

describe('readiness', () => {
  it('is ready once NVML is initialised and a first sample is taken, and says why not before', () => {
    expect(readiness({ nvmlReady: false, unavailableReason: 'libnvidia-ml.so.1 not found in 5 places', hasSample: false })).toEqual({ ok: false, reason: 'libnvidia-ml.so.1 not found in 5 places' });
    expect(readiness({ nvmlReady: false, unavailableReason: undefined, hasSample: false })).toEqual({ ok: false, reason: 'NVML not initialised yet' });
    expect(readiness({ nvmlReady: true, unavailableReason: undefined, hasSample: false })).toEqual({ ok: false, reason: 'no sample taken yet' });
    expect(readiness({ nvmlReady: true, unavailableReason: undefined, hasSample: true })).toEqual({ ok: true, reason: '' });
  });
});
