import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { optionDocs, optionsMarkdown } from '../../server/cli-options.js';
import { DEFAULT_BROKER_OPTIONS } from '../../server/config.js';

describe('README configuration table', () => {
  it('matches the options, defaults and doc comments in config.ts', () => {
    const table = optionsMarkdown(optionDocs(readFileSync('server/config.ts', 'utf8')));
    const readme = readFileSync('README.md', 'utf8');
    expect(readme, 'run: npx tsx scripts/config-table.ts').toContain(table);
  });

  it('documents every option', () => {
    const docs = optionDocs(readFileSync('server/config.ts', 'utf8'));
    const undocumented = Object.keys(DEFAULT_BROKER_OPTIONS).filter((k) => !docs[k]);
    expect(undocumented).toEqual([]);
  });
});
