import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { regenerate } from '../scripts/docs-tables.js';

describe('README generated tables', () => {
  it('match the family and flag tables (run `npm run docs` after changing them)', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    expect(regenerate(readme)).toBe(readme);
  });
});
