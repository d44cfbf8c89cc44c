/**
 * A reference reading: a number, a marker that the tool shows no value ("[N/A]",
 * "[Not Supported]", "N/A"), or undefined when the reference was not read at all.
 */
export interface NotAvailable {
  na: string;
}
export type Reading = number | NotAvailable | undefined;

export function isNA(r: Reading | string | null | undefined): r is NotAvailable {
  return typeof r === 'object' && r !== null && 'na' in r;
}

/** What nvidia-smi writes where it has no value. */
export function naMarker(text: string): NotAvailable | undefined {
  const t = text.trim();
  if (/^\[[^\]]*\]$/.test(t) || t === 'N/A' || t === 'Not Supported' || t === 'Unknown Error' || t === '') return { na: t || '(empty)' };
  return undefined;
}

/**
 * "81559 MiB", "72.05 W", "31 C", "1980 MHz", "0 %", "592 KB/s", "12" -> the number;
 * a marker -> NotAvailable; anything else throws (a format the parser does not know).
 */
export function numberWithUnit(text: string | undefined): Reading {
  if (text === undefined) return undefined;
  const na = naMarker(text);
  if (na) return na;
  const m = /^([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*([A-Za-z%/()]*)$/.exec(text.trim());
  if (!m) throw new Error(`not a number: ${JSON.stringify(text)}`);
  return Number(m[1]);
}

/** "Yes"/"No", "Enabled"/"Disabled", "Active"/"Not Active" -> 1/0. */
export function flag(text: string | undefined): Reading {
  if (text === undefined) return undefined;
  const na = naMarker(text);
  if (na) return na;
  const t = text.trim().toLowerCase();
  if (t === 'yes' || t === 'enabled' || t === 'active') return 1;
  if (t === 'no' || t === 'disabled' || t === 'not active') return 0;
  throw new Error(`not a yes/no value: ${JSON.stringify(text)}`);
}

/** "P0" .. "P15" -> 0 .. 15. */
export function pstate(text: string | undefined): Reading {
  if (text === undefined) return undefined;
  const na = naMarker(text);
  if (na) return na;
  const m = /^P(\d+)$/.exec(text.trim());
  if (!m) throw new Error(`not a P-state: ${JSON.stringify(text)}`);
  return Number(m[1]);
}

/** "0x0000000000000001" -> 1. */
export function hexMask(text: string | undefined): Reading {
  if (text === undefined) return undefined;
  const na = naMarker(text);
  if (na) return na;
  const t = text.trim();
  if (!/^0x[0-9a-fA-F]+$/.test(t)) throw new Error(`not a hex bit mask: ${JSON.stringify(text)}`);
  return Number(BigInt(t));
}

export function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** A short form for the table: up to 4 significant digits past the integer part, no float noise. */
export function fmt(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return String(v);
  const abs = Math.abs(v);
  if (abs >= 1000) return v.toFixed(0);
  if (abs >= 100) return v.toFixed(1);
  if (abs >= 1) return v.toFixed(2);
  return Number(v.toPrecision(3)).toString();
}
