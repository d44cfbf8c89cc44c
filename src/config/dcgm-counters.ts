import { readFileSync } from 'node:fs';
import { exporterError } from '../errors.js';

/** What a dcgm-exporter counters file selects: its fields by name, in file order. */
export interface DcgmCounters {
  file: string;
  /** Fields listed as gauge or counter: the DCGM families to export. */
  fields: readonly string[];
  /** Fields listed as label (dcgm-exporter adds them as labels; the exporter has the driver version label always). */
  labels: readonly string[];
}

const FIELD = /^DCGM_(?:FI|EXP)_[A-Z0-9_]+$/;
const TYPES = new Set(['gauge', 'counter', 'label']);

/**
 * Parses dcgm-exporter's counters CSV unchanged: one `FIELD, type, help` per line, `#` comments
 * and blank lines skipped. A line that is not that is one error naming the file and the line.
 */
export function parseDcgmCounters(text: string, file: string, flag = '--dcgm.counters'): DcgmCounters {
  const fields: string[] = [];
  const labels: string[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line || line.startsWith('#')) continue;
    const where = `line ${i + 1}`;
    const parts = line.split(',');
    if (parts.length < 2) throw exporterError('KGE_DCGM_COUNTERS_INVALID', flag, file, `${where}: expected "DCGM_FI_FIELD, gauge|counter|label, help", got ${JSON.stringify(line.slice(0, 80))}`);
    const field = parts[0]!.trim();
    const type = parts[1]!.trim().toLowerCase();
    if (!FIELD.test(field)) throw exporterError('KGE_DCGM_COUNTERS_INVALID', flag, file, `${where}: ${JSON.stringify(field.slice(0, 80))} is not a DCGM field name (DCGM_FI_... or DCGM_EXP_...)`);
    if (!TYPES.has(type)) throw exporterError('KGE_DCGM_COUNTERS_INVALID', flag, file, `${where}: type ${JSON.stringify(type.slice(0, 40))} of ${field} is not gauge, counter or label`);
    (type === 'label' ? labels : fields).push(field);
  }
  if (fields.length === 0) throw exporterError('KGE_DCGM_COUNTERS_INVALID', flag, file, 'lists no gauge or counter field');
  return { file, fields, labels };
}

/** Reads and parses a counters file; an unreadable file is one error naming the flag and the reason. */
export function readDcgmCounters(file: string, flag = '--dcgm.counters'): DcgmCounters {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw exporterError('KGE_DCGM_COUNTERS_INVALID', flag, file, `cannot read it: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseDcgmCounters(text, file, flag);
}
