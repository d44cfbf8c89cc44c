/**
 * The seam where pod labels join device series. The exporter core ships without a
 * kubelet client: every device has no holders, so its series carry no pod labels
 * (as dcgm-exporter writes an unallocated device).
 */
export interface DeviceHolder {
  pod: string;
  namespace: string;
  container: string;
  /** Replica number when several containers share one GPU (time-slicing). */
  vgpu?: string;
}

export interface DeviceAttribution {
  /** Holders of a GPU (by GPU UUID) or a MIG instance (by MIG UUID). */
  holdersOf(deviceUuid: string): readonly DeviceHolder[];
}

export const NO_ATTRIBUTION: DeviceAttribution = {
  holdersOf: () => [],
};
