#!/usr/bin/env node
// Plain JavaScript on purpose: it must run on any Node to say clearly when this one is too old.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const MIN = [22, 12];
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < MIN[0] || (major === MIN[0] && minor < MIN[1])) {
  process.stderr.write(
    `tether: Node.js ${MIN.join('.')} or newer is required (Node 24 LTS recommended); this is ${process.version} at ${process.execPath}.\n` +
      '  Run it through npm (npm start, npm run tether -- <command>), which uses the Node.js the project installs,\n' +
      '  or install Node.js 24 LTS.\n',
  );
  process.exit(1);
}

const main = fileURLToPath(new URL('../src/main.ts', import.meta.url));
if (process.features.typescript) {
  await import(main);
} else {
  // Node 22.12–22.17 can strip types only behind a flag; run the CLI in a child that has it.
  const child = spawn(process.execPath, ['--experimental-strip-types', '--disable-warning=ExperimentalWarning', main, ...process.argv.slice(2)], { stdio: 'inherit' });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
}
