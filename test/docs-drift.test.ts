import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GENERATED_DOCS, regenerate } from '../scripts/docs-tables.js';
import { NODE_FLAGS } from '../src/node-flags.js';

describe('generated tables', () => {
  it.each(Object.keys(GENERATED_DOCS))('of %s match the value, family and flag tables (run `npm run docs` after changing them)', (file) => {
    const doc = readFileSync(new URL(`../${file}`, import.meta.url), 'utf8');
    expect(regenerate(doc, file)).toBe(doc);
  });
});

describe('node flags', () => {
  const flags = NODE_FLAGS.join(' ');
  it('the command shebang runs node with the flags the benchmark measured', () => {
    const main = readFileSync(new URL('../src/main.ts', import.meta.url), 'utf8');
    expect(main.split('\n')[0]).toBe(`#!/usr/bin/env -S node ${flags}`);
  });
  it('npm start runs node with the same flags', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.start).toBe(`node ${flags} dist/src/main.js`);
  });
});
