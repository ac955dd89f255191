export { startEmbeddedBrokers } from './embedded-brokers.ts';
export type { EmbeddedBroker, EmbeddedOptions } from './embedded-brokers.ts';
