import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readBackendFile } from '../src/backend-file.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function file(name: string, content: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'tether-backend-file-'));
  dirs.push(dir);
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

describe('readBackendFile', () => {
  it('reads a YAML mapping with a backends list, in every entry form', () => {
    const path = file('b.yaml', 'backends:\n  - 10.0.0.1:1883\n  - emqx-1=10.0.0.2:1883\n  - { name: emqx-2, address: "[::1]:1883", weight: 3, metadata: { zone: a } }\n');
    expect(readBackendFile(path)).toEqual([
      { name: '10.0.0.1:1883', address: '10.0.0.1:1883' },
      { name: 'emqx-1', address: '10.0.0.2:1883' },
      { name: 'emqx-2', address: '[::1]:1883', weight: 3, metadata: { zone: 'a' } },
    ]);
  });

  it('reads a JSON list', () => {
    expect(readBackendFile(file('b.json', '["a=127.0.0.1:1"]'))).toEqual([{ name: 'a', address: '127.0.0.1:1' }]);
  });

  it.each([
    ['b.json', '{ nope', /is not valid JSON/],
    ['b.yaml', 'port: 1', /expected a list of backends, or a mapping with a "backends" list/],
    ['b.yaml', '- { address: nope }', /\[0\]: "nope" is not host:port/],
    ['b.yaml', '- a=127.0.0.1:1\n- a=127.0.0.1:2', /\[1\] name "a" is used twice/],
    ['b.yaml', '- { address: "127.0.0.1:1", weight: 0 }', /\[0\]\.weight must be a whole number from 1 to 256/],
    ['b.yaml', '- { address: "127.0.0.1:1", port: 2 }', /\[0\] has unknown keys: port/],
  ])('%s %j is refused with a message that says where', (name, content, message) => {
    expect(() => readBackendFile(file(name, content))).toThrow(message);
  });
});
