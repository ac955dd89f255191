import { defineConfig } from 'vitest/config';

// The plugin's own test setup, as it would be in its own repository: `npx vitest run` here.
// (It is not one of the monorepo's workspace projects, so the root `npm test` does not run it.)
export default defineConfig({
  test: { include: ['test/**/*.test.ts'] },
});
