import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

let counter = 0;

/**
 * Replaces a scenario file in one step: the text goes to a temporary file beside it, which is
 * then renamed over it. The simulated library re-reads its scenario whenever the file's size or
 * time changes, so a plain rewrite (truncate, then write) can be read half written: an empty
 * file is a valid scenario with no GPUs, and every GPU would seem to fall off the bus and come
 * back. A rename is seen whole or not at all.
 */
export function replaceScenarioFile(file: string, text: string | Buffer, encoding: BufferEncoding = 'utf8'): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${counter++}.tmp`);
  writeFileSync(tmp, text, typeof text === 'string' ? encoding : undefined);
  renameSync(tmp, file);
}

/** Adds lines to the end of a scenario file, in one step as replaceScenarioFile does. */
export function appendScenarioLines(file: string, lines: string): void {
  replaceScenarioFile(file, readFileSync(file, 'utf8') + lines);
}
