/**
 * `tether bench network`: the balancer in its own process under real MQTT traffic over loopback,
 * against the direct path and HAProxy in the same run. See run.ts.
 */
export { runNetworkBench } from './run.ts';
export type { NetworkBenchResult, RoundResult } from './run.ts';
export { resolveOptions, DEFAULTS, LIMITS, BASELINES } from './options.ts';
export type { NetworkBenchOptions, Baseline } from './options.ts';
export type { BackendSpec } from './backends.ts';
export { DEFAULT_SCENARIOS, SCENARIOS, METRICS } from './metrics.ts';
export type { Scenario, MetricDef } from './metrics.ts';
export { renderNetworkText } from './report-text.ts';
export { renderNetworkHtml } from './report-html.ts';
export { loopbackAddress } from './loopback.ts';
export { haproxyConfig } from './haproxy-config.ts';
export { haproxyInstalled } from './targets.ts';
export { typeScriptNode } from './children.ts';
