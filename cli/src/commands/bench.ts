import { writeFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { loadScenario, parseChainArg, renderHtml, renderText, runBench, type ChainSpec, type Progress } from '@tether/bench';
import { parseCommand, UsageError } from '../args.ts';
import { COMMAND_USAGE } from '../usage.ts';
import { builtinRegistry } from '../builtins.ts';

const FLAGS = {
  scenario: { type: 'string', short: 's' },
  chain: { type: 'string', multiple: true },
  clients: { type: 'string' },
  seed: { type: 'string' },
  json: { type: 'boolean' },
  report: { type: 'string' },
  plugin: { type: 'string', multiple: true },
} as const;

/** `tether bench strategies`: the strategy simulator of @tether/bench. */
export async function benchStrategies(argv: string[]): Promise<void> {
  const args = parseCommand(argv, COMMAND_USAGE['bench strategies'], FLAGS);
  if (!args) return;
  const { values, positionals } = args;
  if (positionals.length > 0) throw new UsageError(`bench strategies: unexpected argument "${positionals[0]!}"`);
  if (typeof values.scenario !== 'string') throw new UsageError('bench strategies: -s/--scenario FILE is required (see examples/bench/)');
  const report = values.report as string | undefined;
  if (report !== undefined && !/\.html?$/i.test(report)) throw new UsageError('--report must name an .html file');

  const scenario = loadScenario(values.scenario, { clients: whole('clients', values.clients), seed: whole('seed', values.seed) });
  const chains = (values.chain as string[] | undefined)?.map((text): ChainSpec => {
    const chain = parseChainArg(text, process.cwd());
    if (typeof chain === 'string') throw new UsageError(chain);
    return chain;
  });
  // Like chain entries, module paths given here are relative to the working directory.
  const plugins = (values.plugin as string[] | undefined)?.map((p) => (p.startsWith('.') && !isAbsolute(p) ? resolve(p) : p));

  const progress = progressReporter(process.stderr);
  const result = await runBench({
    scenario,
    registry: builtinRegistry(),
    ...(chains ? { chains } : {}),
    ...(plugins ? { plugins } : {}),
    onProgress: progress.update,
  });
  progress.done();

  if (report !== undefined) {
    writeFileSync(report, renderHtml(result));
    process.stderr.write(`report written to ${report}\n`);
  }
  process.stdout.write(values.json ? `${JSON.stringify(result, null, 2)}\n` : renderText(result));
}

function whole(flag: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^\d+$/.test(value)) throw new UsageError(`--${flag} must be a whole number, got "${String(value)}"`);
  return Number(value);
}

/**
 * On a terminal, one line rewritten in place (at most ten times a second); otherwise, as in a CI
 * log, one plain line per chain as it starts.
 */
function progressReporter(stream: NodeJS.WriteStream): { update: (p: Progress) => void; done: () => void } {
  const started = performance.now();
  let last = 0;
  if (!stream.isTTY) {
    return {
      update: (p) => {
        if (p.step === 0 && p.phase === 'simulate') stream.write(`bench: chain ${p.chainIndex + 1}/${p.chains} ${p.chain}\n`);
      },
      done: () => stream.write(`bench: done in ${((performance.now() - started) / 1000).toFixed(1)} s\n`),
    };
  }
  return {
    update: (p) => {
      const now = performance.now();
      if (now - last < 100 && p.phase === 'simulate') return;
      last = now;
      const pct = Math.floor(((p.chainIndex + (p.step + 1) / p.steps) / p.chains) * 100);
      const what = p.phase === 'simulate' ? `step ${p.step + 1}/${p.steps}` : 'measuring selection cost and memory';
      const line = `bench ${pct}%  chain ${p.chainIndex + 1}/${p.chains} ${p.chain}  ${what}`;
      stream.write(`\r\x1b[K${line.slice(0, Math.max(20, (stream.columns || 80) - 1))}`);
    },
    done: () => stream.write('\r\x1b[K'),
  };
}
