import { execFileSync } from 'node:child_process';

/**
 * Whether a Debian binary is present. On a developer's laptop a missing one skips the tests that
 * need it (with the reason in the test name); in CI (CI=true) it fails them instead.
 */
export function hasBinary(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    if (process.env.CI === 'true') throw new Error(`${name} is required in CI but not installed (.ci/run installs it)`);
    return false;
  }
}

export function skipReason(name: string): string {
  return hasBinary(name) ? '' : ` [skipped: ${name} not installed; apt-get install it]`;
}
