import { describe, expect, it } from 'vitest';
import { chainName, DEFAULT_CHAINS, parseChainArg, uniqueNames } from '../src/chains.ts';

describe('chains', () => {
  it('the defaults are the six chains the docs compare', () => {
    expect(DEFAULT_CHAINS.map((c) => c.name)).toEqual([
      'stick-table+least-connections',
      'rendezvous-hash+least-connections',
      'stick-table[persistent]+least-connections',
      'round-robin',
      'random-two-choices',
      'least-connections',
    ]);
    expect(DEFAULT_CHAINS[2]!.select[0]).toEqual({ use: 'stick-table', options: {}, when: 'persistent' });
  });

  it('--chain takes comma-separated names with an optional @condition', () => {
    expect(parseChainArg('stick-table@persistent, least-connections', '/x')).toEqual({
      name: 'stick-table[persistent]+least-connections',
      select: [{ use: 'stick-table', options: {}, when: 'persistent' }, { use: 'least-connections', options: {}, when: 'always' }],
    });
    // A scoped package keeps its @.
    expect(parseChainArg('@acme/geo,least-connections', '/x')).toMatchObject({ select: [{ use: '@acme/geo', when: 'always' }, {}] });
    expect(parseChainArg('@acme/geo@clean,least-connections', '/x')).toMatchObject({ select: [{ use: '@acme/geo', when: 'clean' }, {}] });
  });

  it('--chain takes a JSON list for options, and resolves relative plugin paths', () => {
    const chain = parseChainArg('[{"use":"stick-table","options":{"expire":"10m"}},"./my/strategy.ts"]', '/work/dir');
    expect(chain).toEqual({
      name: 'stick-table+/work/dir/my/strategy.ts',
      select: [{ use: 'stick-table', options: { expire: '10m' }, when: 'always' }, { use: '/work/dir/my/strategy.ts', options: {}, when: 'always' }],
    });
  });

  it('a bad --chain is an error message, not an exception', () => {
    expect(parseChainArg('[nope', '/')).toMatch(/not valid JSON/);
    expect(parseChainArg('[{"use":"x","when":"later"}]', '/')).toMatch(/--chain\[0\]\.when: must be one of/);
    expect(parseChainArg(' , ', '/')).toMatch(/at least one strategy/);
  });

  it('names are made unique for the report', () => {
    const select = [{ use: 'round-robin', options: {}, when: 'always' as const }];
    expect(uniqueNames([{ name: chainName(select), select }, { name: 'round-robin', select }]).map((c) => c.name)).toEqual(['round-robin', 'round-robin #2']);
  });
});
