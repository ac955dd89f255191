/** What `tether reload` (SIGHUP, `POST /reload`, `--watch`) did, for the log, the admin API and the CLI. */
export interface ReloadResult {
  /** True when the new configuration is running. */
  readonly ok: boolean;
  /** The generation running after the attempt (unchanged when it failed). */
  readonly generation: number;
  /** Why the configuration was refused: every error, one per line. Empty when ok. */
  readonly errors: readonly string[];
  /** What the reload changed, one line each. */
  readonly changes: readonly string[];
  /** Settings changed in the file that only a restart applies (the running value was kept). */
  readonly needRestart: readonly string[];
  /** What asked for it: SIGHUP, admin, watch, … */
  readonly trigger: string;
  /** With several workers: each worker's own result. */
  readonly workers?: readonly WorkerReload[];
}

export interface WorkerReload {
  readonly worker: number;
  readonly ok: boolean;
  readonly generation: number;
  readonly errors: readonly string[];
}

/** `tether status` / `GET /status`: which configuration is running, since when, from where. */
export interface StatusView {
  readonly generation: number;
  /** When the running generation was loaded (ISO 8601). */
  readonly loadedAt: string;
  /** The configuration file, if one was given (flags and environment apply on top of it). */
  readonly file: string | null;
  /** What loaded it: start, SIGHUP, admin, watch. */
  readonly trigger: string;
  /** The last reload attempt, when it failed: the running generation is older than the file. */
  readonly lastFailure: { readonly at: string; readonly errors: readonly string[] } | null;
  readonly pid: number;
  readonly startedAt: string;
  readonly uptimeSeconds: number;
  readonly node: string;
  /** With several workers: each worker's generation. */
  readonly workers?: readonly { readonly worker: number; readonly pid: number; readonly generation: number; readonly loadedAt: string }[];
}
