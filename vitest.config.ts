import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { defineConfig } from 'vitest/config';

// One Vitest project per workspace package, named after it: `npm test` runs them all,
// `npx vitest run --project @tether/core` one. `extends: true` makes each project inherit the
// timeouts below (projects given as bare globs would not).
// The example third-party plugins are not workspaces, but their tests run with everyone else's.
const packages = ['core', 'cli', 'bench', 'test', ...['plugins', 'strategies', 'examples/plugins'].flatMap((dir) => readdirSync(dir).map((name) => `${dir}/${name}`))]
  .filter((dir) => existsSync(`${dir}/package.json`));

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 30_000,
    projects: packages.map((dir) => ({
      extends: true,
      test: { name: (JSON.parse(readFileSync(`${dir}/package.json`, 'utf8')) as { name: string }).name, root: dir },
    })),
  },
});

