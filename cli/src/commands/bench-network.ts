import { existsSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LOG_LEVELS, parseDuration, TetherError } from '@tether/core';
import {
  BASELINES, DEFAULTS, LIMITS, SCENARIOS, loopbackAddress, renderNetworkHtml, renderNetworkText, resolveOptions, runNetworkBench, typeScriptNode,
  type BackendSpec, type Baseline, type NetworkBenchOptions, type Scenario,
} from '@tether/bench/network';
import { parseCommand, UsageError } from '../args.ts';
import { benchNetworkUsage } from '../usage.ts';

const FLAGS = {
  config: { type: 'string', short: 'c', multiple: true },
  backend: { type: 'string', multiple: true },
  'backend-count': { type: 'string' },
  rounds: { type: 'string' },
  scenarios: { type: 'string' },
  connections: { type: 'string' },
  clients: { type: 'string' },
  concurrency: { type: 'string' },
  duration: { type: 'string' },
  baseline: { type: 'string' },
  workers: { type: 'string' },
  metrics: { type: 'string' },
  'log-level': { type: 'string' },
  redis: { type: 'boolean' },
  json: { type: 'boolean' },
  report: { type: 'string' },
} as const;

const USAGE = benchNetworkUsage({
  backendCount: (DEFAULTS.backend as { count: number }).count,
  rounds: DEFAULTS.rounds,
  scenarios: SCENARIOS,
  connections: DEFAULTS.connections,
  idleConnections: DEFAULTS.idleConnections,
  idleLimit: LIMITS.idleConnections,
  concurrency: DEFAULTS.concurrency,
  durationS: DEFAULTS.durationMs / 1000,
  baselines: BASELINES,
});

/** `tether bench network`: the balancer under real MQTT traffic, against direct and HAProxy. */
export async function benchNetwork(argv: string[]): Promise<void> {
  const args = parseCommand(argv, USAGE, FLAGS);
  if (!args) return;
  const { values, positionals } = args;
  if (positionals.length > 0) throw new UsageError(`bench network: unexpected argument "${positionals[0]!}"`);
  const report = values.report as string | undefined;
  if (report !== undefined && !/\.html?$/i.test(report)) throw new UsageError('--report must name an .html file');

  const controller = new AbortController();
  const options: NetworkBenchOptions = {
    tetherCommand: [...typeScriptNode(), fileURLToPath(new URL('../main.ts', import.meta.url))],
    ...networkOptions(values),
    onProgress: progressReporter(process.stderr),
    signal: controller.signal,
  };
  try {
    resolveOptions(options);
  } catch (err) {
    throw new UsageError(`bench network: ${(err as Error).message}`);
  }

  const interrupt = (): void => controller.abort();
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  try {
    const result = await runNetworkBench(options);
    clearProgress(process.stderr);
    process.stdout.write(values.json ? `${JSON.stringify(result, null, 2)}\n` : renderNetworkText(result, { tty: process.stdout.isTTY === true }));
    if (report !== undefined) {
      writeFileSync(report, renderNetworkHtml(result));
      process.stderr.write(`report written to ${report}\n`);
    }
  } catch (err) {
    clearProgress(process.stderr);
    if (controller.signal.aborted) throw new TetherError('TETHER_ERR_BENCH', 'bench network: interrupted; the processes it started have been stopped');
    throw new TetherError('TETHER_ERR_BENCH', `bench network: ${(err as Error).message}`, { cause: err });
  } finally {
    process.removeListener('SIGINT', interrupt);
    process.removeListener('SIGTERM', interrupt);
  }
}

/** Flags to options; anything malformed is a UsageError naming the flag. */
function networkOptions(values: Record<string, unknown>): Omit<NetworkBenchOptions, 'tetherCommand'> {
  const configs = (values.config as string[] | undefined)?.map((file) => {
    const path = resolve(file);
    if (!existsSync(path)) throw new UsageError(`--config ${file}: no such file`);
    return path;
  });
  const list = (flag: string): string[] | undefined => (typeof values[flag] === 'string' ? (values[flag] as string).split(',').map((s) => s.trim()).filter(Boolean) : undefined);
  const scenarios = list('scenarios');
  for (const s of scenarios ?? []) if (!(SCENARIOS as readonly string[]).includes(s)) throw new UsageError(`--scenarios: unknown scenario "${s}" (${SCENARIOS.join(', ')})`);
  let baselines = list('baseline');
  if (baselines?.length === 1 && baselines[0] === 'none') baselines = [];
  for (const b of baselines ?? []) if (!(BASELINES as readonly string[]).includes(b)) throw new UsageError(`--baseline: unknown baseline "${b}" (${BASELINES.join(', ')} or none)`);
  const idle = whole('clients', values.clients);
  if (idle !== undefined && idle > LIMITS.idleConnections) {
    throw new UsageError(`--clients ${idle}: the idle hold is capped at ${LIMITS.idleConnections} connections (the balancer holds two descriptors per connection, and a process may have 20,000)`);
  }
  const durationMs = duration(values.duration);
  const rounds = whole('rounds', values.rounds);
  const connections = whole('connections', values.connections);
  const concurrency = whole('concurrency', values.concurrency);
  const workers = list('workers')?.map((n) => {
    if (!/^\d+$/.test(n) || Number(n) < 1) throw new UsageError(`--workers must be worker counts such as 1,2; got "${n}"`);
    return Number(n);
  });
  const metrics = list('metrics')?.map((m) => {
    if (m !== 'on' && m !== 'off') throw new UsageError(`--metrics must be on, off or on,off; got "${m}"`);
    return m === 'on';
  });
  const logLevel = values['log-level'] as string | undefined;
  if (logLevel !== undefined && !(LOG_LEVELS as readonly string[]).includes(logLevel)) throw new UsageError(`--log-level must be one of ${LOG_LEVELS.join(', ')}; got "${logLevel}"`);
  return {
    ...(workers ? { workers } : {}),
    ...(metrics ? { metrics } : {}),
    ...(logLevel ? { logLevel } : {}),
    ...(values.redis === true ? { redis: true } : {}),
    ...(configs ? { configs } : {}),
    backend: backendSpec(values.backend as string[] | undefined, whole('backend-count', values['backend-count'])),
    ...(rounds !== undefined ? { rounds } : {}),
    ...(scenarios ? { scenarios: scenarios as Scenario[] } : {}),
    ...(connections !== undefined ? { connections } : {}),
    ...(idle !== undefined ? { idleConnections: idle } : {}),
    ...(concurrency !== undefined ? { concurrency } : {}),
    ...(durationMs !== undefined ? { durationMs } : {}),
    ...(baselines ? { baselines: baselines as Baseline[] } : {}),
  };
}

function backendSpec(backends: string[] | undefined, count: number | undefined): BackendSpec {
  const kinds = backends ?? ['responder'];
  if (kinds.length === 1 && (kinds[0] === 'responder' || kinds[0] === 'embedded')) {
    return { kind: kinds[0], count: count ?? (DEFAULTS.backend as { count: number }).count };
  }
  if (kinds.some((k) => k === 'responder' || k === 'embedded')) throw new UsageError('--backend responder or embedded stands alone; HOST:PORT brokers may be repeated');
  if (count !== undefined) throw new UsageError('--backend-count is for responder and embedded backends; give each external broker with --backend HOST:PORT');
  try {
    return { kind: 'external', addresses: kinds.map((text) => loopbackAddress(text)) };
  } catch (err) {
    throw new UsageError(`--backend: ${(err as Error).message}`);
  }
}

function whole(flag: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^\d+$/.test(value)) throw new UsageError(`--${flag} must be a whole number, got "${String(value)}"`);
  return Number(value);
}

/** Seconds (2, 0.5) or a duration with a unit (500ms, 2s). */
function duration(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const text = String(value);
  const ms = /^\d+(\.\d+)?$/.test(text) ? Number(text) * 1000 : parseDuration(text);
  if (ms === undefined || !Number.isFinite(ms)) throw new UsageError(`--duration must be seconds (2, 0.5) or a duration such as 500ms, got "${text}"`);
  return Math.round(ms);
}

/** On a terminal, one line rewritten in place; otherwise one plain line per phase (CI logs). */
function progressReporter(stream: NodeJS.WriteStream): (line: string) => void {
  if (!stream.isTTY) return (line) => stream.write(`bench: ${line}\n`);
  return (line) => stream.write(`\r\x1b[K${`bench: ${line}`.slice(0, Math.max(20, (stream.columns || 80) - 1))}`);
}

function clearProgress(stream: NodeJS.WriteStream): void {
  if (stream.isTTY) stream.write('\r\x1b[K');
}
