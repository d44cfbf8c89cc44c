import { readFileSync, writeFileSync } from 'node:fs';
import { GENERATED_DOCS, regenerate } from './docs-tables.js';

/** `npm run docs`: rewrites the generated tables in README.md and docs/simulator.md. */
for (const file of Object.keys(GENERATED_DOCS)) {
  const url = new URL(`../${file}`, import.meta.url);
  const before = readFileSync(url, 'utf8');
  const after = regenerate(before, file);
  if (after !== before) writeFileSync(url, after);
  process.stdout.write(after === before ? `${file} is up to date\n` : `${file} tables regenerated\n`);
}
