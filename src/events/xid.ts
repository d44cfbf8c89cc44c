/**
 * Short descriptions of the Xid codes operators meet most, for the err_msg label (from
 * NVIDIA's public Xid catalog, in our words). Unknown codes get a generic text.
 */
const XID_MESSAGES: Readonly<Record<number, string>> = {
  8: 'GPU stopped processing (channel timeout)',
  13: 'Graphics engine exception (usually an application error)',
  31: 'GPU memory page fault (usually an application error)',
  32: 'Invalid or corrupted push buffer stream',
  38: 'Driver firmware error',
  43: 'GPU stopped processing (usually an application error)',
  45: 'Preemptive cleanup after earlier errors',
  48: 'Double-bit ECC error',
  56: 'Display engine error',
  57: 'Error programming video memory interface',
  61: 'Internal micro-controller breakpoint or warning',
  62: 'Internal micro-controller halt',
  63: 'ECC page retirement or row remapping recorded',
  64: 'ECC page retirement or row remapping failed to record',
  68: 'Video decoder (NVDEC) exception',
  69: 'Graphics engine class error',
  74: 'NVLink error',
  79: 'GPU has fallen off the bus',
  92: 'High single-bit ECC error rate',
  94: 'Contained ECC error (the affected application must restart)',
  95: 'Uncontained ECC error (reset the GPU)',
  109: 'Context switch timeout',
  110: 'Security fault error',
  119: 'GSP firmware RPC timeout',
  120: 'GSP firmware error',
  121: 'C2C link error',
  123: 'SPI PMU RPC failure',
  136: 'Link training failure',
  140: 'Unrecovered ECC error',
  143: 'GPU initialization failure',
  154: 'GPU recovery action changed',
};

export function xidMessage(code: number): string {
  return XID_MESSAGES[code] ?? `Xid ${code} (see NVIDIA's Xid catalog)`;
}
