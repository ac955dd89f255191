import { connectGuard } from './plugin.ts';

export { connectGuard };
export { KickLoopDetector, type KickLoopSettings, type Verdict } from './kick-loop-detector.ts';
export { SourceLimiter, type SourceLimitSettings } from './source-limiter.ts';
export default connectGuard;
