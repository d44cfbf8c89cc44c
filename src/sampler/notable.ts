import type { NodeSample } from '../sample.js';

/**
 * What the main thread's observers of samples read (the state-change log: collector errors,
 * unsupported collectors, enumeration errors, missing symbols; the GPUs seen since start: each
 * GPU's identity and the lost GPUs with their errors), as one string. The sampling worker sends a
 * sample as a message when this changes from the tick before (and after a failed or overlong tick),
 * so those observers see every change as it happens; other samples wait in shared memory until read.
 */
export function notableKey(sample: NodeSample): string {
  const parts: string[] = [sample.enumerationError ?? '', String(sample.missingSymbols?.length ?? 0)];
  for (const c of sample.collectors) parts.push(`c ${c.name} ${c.error ?? ''}`);
  for (const g of sample.gpus) {
    parts.push(`g ${g.index} ${g.uuid} ${g.name} ${g.pciBusId} ${g.minor}`);
    for (const u of g.unsupported ?? []) parts.push(`u ${u.collector} ${u.reason}`);
  }
  for (const l of sample.lostGpus) parts.push(`l ${l.index} ${l.uuid ?? ''} ${l.error}`);
  return parts.join('\n');
}
