/** What /readyz answers: ready, or the reason it is not. */
export interface Readiness {
  ok: boolean;
  reason: string;
}

/** The sampling side as readiness sees it. */
export interface SamplingReadiness {
  /** NVML loaded and initialised. */
  nvmlReady: boolean;
  /** Why NVML cannot be used, when it cannot. */
  unavailableReason: string | undefined;
  /** A first complete sample was taken. */
  hasSample: boolean;
}

/**
 * The readiness rules: ready once NVML is initialised and a first sample is taken. A GPU that
 * stops answering, a failing collector, the kubelet being down or a stalled tick keep the
 * exporter ready: it still serves what it can, and says what it cannot in its own metrics.
 */
export function readiness(s: SamplingReadiness): Readiness {
  if (!s.nvmlReady) return { ok: false, reason: s.unavailableReason ?? 'NVML not initialised yet' };
  if (!s.hasSample) return { ok: false, reason: 'no sample taken yet' };
  return { ok: true, reason: '' };
}
