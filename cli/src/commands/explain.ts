import { createLogger, createTether, loadConfig, type ExplainResult } from '@tether/core';
import { configSources, CONFIG_FLAGS, parseCommand, UsageError } from '../args.ts';
import { builtinRegistry } from '../builtins.ts';
import { COMMAND_USAGE } from '../usage.ts';
import { AdminClient } from './admin-client.ts';

const FLAGS = { ...CONFIG_FLAGS, hex: { type: 'string' }, json: { type: 'boolean' }, 'token-file': { type: 'string' } } as const;
const LEVELS: Record<number, string> = { 3: '3.1', 4: '3.1.1', 5: '5.0' };

/**
 * `tether explain --hex HEX`: the sniff verdict, the CONNECT's fields, the key and the backend the
 * strategy chain would choose. Computed here from the configuration, or, with --admin, by the
 * running balancer against its live table. Exit 0 for a valid CONNECT, 1 otherwise.
 */
export async function explainCommand(argv: string[]): Promise<void> {
  const args = parseCommand(argv, COMMAND_USAGE.explain, FLAGS);
  if (!args) return;
  const { values } = args;
  const hex = typeof values.hex === 'string' ? values.hex.replace(/\s+/g, '') : undefined;
  if (!hex) throw new UsageError('explain needs --hex HEX (the first packet a client sends, or a WebSocket opening: request and frames, as hex)');
  let result: ExplainResult;
  if (!/^([0-9a-fA-F]{2})*$/.test(hex)) {
    result = { valid: false, bytes: 0, error: '--hex is not an even-length hexadecimal string' };
  } else if (typeof values.admin === 'string') {
    result = await AdminClient.from(values).send<ExplainResult>('POST', '/explain', { hex });
  } else {
    const config = loadConfig(configSources(values));
    const { server, container } = await createTether({ config, registry: builtinRegistry(), log: createLogger('silent') });
    result = await server.explain(Buffer.from(hex, 'hex'));
    await server.close();
    container.dispose();
  }
  process.stdout.write(values.json ? `${JSON.stringify(result)}\n` : render(result));
  process.exitCode = result.valid ? 0 : 1;
}

function render(r: ExplainResult): string {
  if (!r.valid) return `invalid: ${r.error}\n`;
  const rows: [string, string][] = [
    ['protocol', `${r.protocolName} level ${r.protocolVersion} (MQTT ${LEVELS[r.protocolVersion!] ?? '?'})`],
    ['client id', r.clientId ? JSON.stringify(r.clientId) : '(empty)'],
    ['username', r.username !== undefined ? JSON.stringify(r.username) : '(none)'],
    [r.protocolVersion === 5 ? 'clean start' : 'clean session', String(r.cleanSession)],
    ['keepalive', `${r.keepalive}s`],
  ];
  if (r.protocolVersion === 5) rows.push(['session expiry', `${r.sessionExpiryInterval ?? 0}s`]);
  rows.push(['session', r.persistentSession ? 'persistent (moving it loses the session)' : 'none kept after disconnect']);
  rows.push(['key', r.key ? `${JSON.stringify(r.key)} (from ${r.keySource})` : '(keyless)']);
  if (r.websocket) rows.push(['websocket', `${r.websocket.path}, subprotocol ${r.websocket.protocol}${r.websocket.mode ? `, ${r.websocket.mode === 'bridge' ? 'bridged to the broker\'s MQTT port' : 'passed through to the broker\'s WebSocket endpoint'}` : ''}`]);
  rows.push(['backend', r.backend ? `${r.backend} (chosen by ${r.strategy})` : `none${r.error ? `: ${r.error}` : ' (no backend configured or available)'}`]);
  return `valid CONNECT${r.websocket ? ' in a WebSocket opening' : ''}, ${r.bytes} bytes\n${rows.map(([k, v]) => `  ${k.padEnd(15)}${v}`).join('\n')}\n`;
}
