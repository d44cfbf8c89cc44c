import { readFileSync, writeFileSync } from 'node:fs';
import { regenerate } from './docs-tables.js';

/** `npm run docs`: rewrites the generated tables in README.md. */
const file = new URL('../README.md', import.meta.url);
const before = readFileSync(file, 'utf8');
const after = regenerate(before);
if (after !== before) writeFileSync(file, after);
process.stdout.write(after === before ? 'README.md is up to date\n' : 'README.md tables regenerated\n');
