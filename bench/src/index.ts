/**
 * @tether/bench: `tether bench strategies`, a simulator that drives the real strategy plugins
 * through reproducible scenarios and compares them. See README.md.
 */
export { loadScenario, parseScenario, LIMITS } from './load-scenario.ts';
export type { ScenarioOverrides, ParseOptions } from './load-scenario.ts';
export type { Scenario, ScenarioEvent, ChainSpec, ClientsSpec } from './scenario.ts';
export { DEFAULT_CHAINS, chainName, parseChainArg } from './chains.ts';
export { ChainError, ScenarioError } from './errors.ts';
export { runBench } from './run.ts';
export type { BenchOptions, BenchResult, ChainResult, Progress } from './run.ts';
export { renderText } from './report/text.ts';
export { renderHtml } from './report/html.ts';
export { Prng } from './prng.ts';
export { ZipfSampler, UniformSampler } from './zipf.ts';
