import { execFileSync } from 'node:child_process';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';

/** One series of a metric family, as parse-prometheus-text-format (prom2json's shape) gives it. */
interface RawSample {
  readonly labels?: Record<string, string>;
  readonly value?: string;
  readonly buckets?: Record<string, string>;
  readonly count?: string;
  readonly sum?: string;
}

interface RawFamily {
  readonly name: string;
  readonly help: string;
  readonly type: 'COUNTER' | 'GAUGE' | 'HISTOGRAM' | 'SUMMARY' | 'UNTYPED';
  readonly metrics: readonly RawSample[];
}

export type Labels = Readonly<Record<string, string>>;

/**
 * A Prometheus text exposition, parsed by a third-party parser (parse-prometheus-text-format),
 * so tests read what a Prometheus server would, never the text by string comparison.
 */
export class Scrape {
  readonly text: string;
  readonly #families: ReadonlyMap<string, RawFamily>;

  constructor(text: string) {
    this.text = text;
    const parsed = parsePrometheusTextFormat(text) as RawFamily[];
    this.#families = new Map(parsed.map((f) => [f.name, f]));
  }

  get names(): string[] {
    return [...this.#families.keys()];
  }

  has(name: string): boolean {
    return this.#families.has(name);
  }

  type(name: string): string | undefined {
    return this.#families.get(name)?.type;
  }

  /** Every series of a counter or gauge with their labels and values. */
  series(name: string): { labels: Labels; value: number }[] {
    return (this.#families.get(name)?.metrics ?? []).map((m) => ({ labels: m.labels ?? {}, value: Number(m.value) }));
  }

  /** The value of the one series whose labels include `labels`; undefined when there is none, an error when several match. */
  value(name: string, labels: Labels = {}): number | undefined {
    const matches = this.series(name).filter((s) => matchesLabels(s.labels, labels));
    if (matches.length > 1) throw new Error(`${name}${JSON.stringify(labels)} matches ${matches.length} series; name more labels`);
    return matches[0]?.value;
  }

  /** The sum over every series whose labels include `labels` (0 when none). */
  sum(name: string, labels: Labels = {}): number {
    return this.series(name).filter((s) => matchesLabels(s.labels, labels)).reduce((n, s) => n + s.value, 0);
  }

  /**
   * A histogram series' `_count` and `_sum`. (parse-prometheus-text-format folds every label set
   * of a histogram into one, so these two sample lines are read here, by exact label set.)
   */
  histogram(name: string, labels: Labels): { count: number; sum: number } | undefined {
    const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).sort().join(',');
    const read = (suffix: string): number | undefined => {
      for (const line of this.text.split('\n')) {
        const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
        if (!m || m[1] !== `${name}${suffix}`) continue;
        if ((m[2] ?? '').split(',').filter(Boolean).sort().join(',') === want) return Number(m[3]);
      }
      return undefined;
    };
    const count = read('_count');
    return count === undefined ? undefined : { count, sum: read('_sum') ?? NaN };
  }
}

function matchesLabels(have: Labels, want: Labels): boolean {
  return Object.entries(want).every(([k, v]) => have[k] === v);
}

/** GETs a metrics URL: the status, the content type and the parsed body (on 200). */
export async function scrape(url: string): Promise<{ status: number; contentType: string | null; scrape: Scrape | undefined; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  const body = await res.text();
  return { status: res.status, contentType: res.headers.get('content-type'), scrape: res.status === 200 ? new Scrape(body) : undefined, body };
}

/** Scrapes and fails unless the answer is a 200 exposition. */
export async function scrapeOk(url: string): Promise<Scrape> {
  const r = await scrape(url);
  if (!r.scrape) throw new Error(`GET ${url}: ${r.status} ${r.body.slice(0, 200)}`);
  return r.scrape;
}

/**
 * Prometheus's own linter (`promtool check metrics`, from Debian's prometheus package) on an
 * exposition: the problems it reports, one per line (naming conventions: `_total` on counters
 * only, base units, …). Empty when it finds none.
 */
export function promtoolProblems(text: string): string[] {
  try {
    execFileSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
    return [];
  } catch (err) {
    const { stdout = '', stderr = '', status } = err as { stdout?: string; stderr?: string; status?: number };
    // Exit status 3: the metrics were read and have lint problems; anything else is a failure to run.
    if (status !== 3) throw err;
    return `${stdout}${stderr}`.split('\n').map((l) => l.trim()).filter(Boolean);
  }
}
