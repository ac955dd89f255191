import { defineConfig } from 'vitest/config';

// One Vitest project per package: `npm test` runs them all; `npx vitest --project @tether/core` one.
export default defineConfig({
  test: {
    projects: ['core', 'plugins/*', 'strategies/*', 'cli', 'test'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
