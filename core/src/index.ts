export { PLUGIN_API_VERSION, ABSTAIN, selected, refuse, defineTransport, defineExtractor, defineStrategy, defineSink, defineProvider } from './plugin.ts';
export type {
  AdminState, Backend, BackendState, ConnFacts, ConnInfo, TlsFacts, Transport, TransportPlugin, Extractor, ExtractorPlugin, PeerChannel, Provider, ProviderPlugin, ProvidedBackend, PluginContext, PluginKind, Refusal, Selection, Sink, SinkPlugin,
  StatsScope, Strategy, StrategyPlugin, TableEntry, TableQuery, TableView, TetherPlugin,
} from './plugin.ts';
export {
  TetherError, ConnectionError, ConfigError, PluginError, PluginHookError, SniffTimeoutError, SniffTooLargeError, WebSocketRejectError,
  SniffInvalidError, ConnectMalformedError, ClientClosedError, ClientRefusedError, NoBackendError, UpstreamConnectError, ListenError, ClusterError,
} from './errors.ts';
export { loadConfig } from './config/load-config.ts';
export type { ConfigSources } from './config/load-config.ts';
export { configSchema } from './config/schema.ts';
export type { TetherConfig, ChainEntry } from './config/types.ts';
export { parseDuration, formatDuration, durationFormat, durationProblem, type DurationBounds } from './config/duration.ts';
export { parseHostPort, formatHostPort } from './net/address.ts';
export type { HostPort } from './net/address.ts';
export { createLogger, LOG_LEVELS } from './logger.ts';
export type { Logger } from './logger.ts';
export { Stats } from './stats.ts';
export { BackendPool } from './backend/backend-pool.ts';
export type { BackendDefinition, HealthCheckType } from './backend/backend-pool.ts';
export { HealthChecker } from './backend/health-checker.ts';
export type { HealthCheckSettings } from './backend/health-checker.ts';
export { probe } from './backend/health-probe.ts';
export { PluginRegistry } from './plugins/plugin-registry.ts';
export { importPluginModule, validateOptions } from './plugins/plugin-loader.ts';
export { inspectConnect } from './sniff/connect-sniffer.ts';
export { OpeningReader, type Opening, type OpeningResult } from './websocket/opening-reader.ts';
export { WEBSOCKET_DEFAULTS, type WebSocketListenerOptions } from './websocket/websocket-handshake.ts';
export type { SniffResult } from './sniff/connect-sniffer.ts';
export { isPersistent } from './pipeline/conn-info.ts';
export { serverUnavailableConnack } from './mqtt/connack.ts';
export type { ExplainResult } from './explain.ts';
export { TetherServer } from './tether-server.ts';
export type { ConfigSource } from './tether-server.ts';
export { FileWatcher } from './reload/file-watcher.ts';
export { planRebind } from './net/rebind.ts';
export type { Bindable, Bound, RebindPlan } from './net/rebind.ts';
export { diffConfig } from './reload/config-changes.ts';
export type { FileWatcherOptions } from './reload/file-watcher.ts';
export type { ReloadResult, StatusView, WorkerReload } from './reload/reload-result.ts';
export { createTether } from './di/container.ts';
export { Tokens } from './di/tokens.ts';
export { AdminServer } from './admin/admin-server.ts';
export { TetherMetrics } from './metrics/tether-metrics.ts';
export type { MetricsJson } from './metrics/tether-metrics.ts';
export { MetricsServer } from './metrics/metrics-server.ts';
export { clusterExposition } from './metrics/cluster-metrics.ts';
export type { Exposition } from './metrics/exposition.ts';
export { ConnackReader } from './mqtt/connack-reader.ts';
export type { ConnackVerdict } from './mqtt/connack-reader.ts';
export { connackReason } from './mqtt/connack-codes.ts';
export { localAdminSource } from './admin/admin-source.ts';
export type { AdminSource, BackendChangeResult, TableEditOutcome } from './admin/admin-source.ts';
export { AdminToken } from './admin/admin-token.ts';
export type { AdminConfig } from './config/admin-config.ts';
export { ADMIN_TOKEN_MIN_LENGTH, checkAdminToken } from './config/schema.ts';
export { isWeight, WEIGHT_MAX, WEIGHT_MIN } from './backend/weight.ts';
export { isLoopbackHost } from './net/loopback.ts';
export { Supervisor } from './cluster/supervisor.ts';
export type { ClusterScheduling, Readiness } from './cluster/supervisor.ts';
export { WorkerPeers } from './cluster/worker-peers.ts';
export { PeerRelay } from './cluster/peer-relay.ts';
export { answerAdmin } from './cluster/worker-admin.ts';
export { processPort } from './cluster/worker-port.ts';
export { WORKER_BACKENDS_ENV } from './cluster/messages.ts';
export type { IpcPort, PrimaryMessage, WorkerMessage } from './cluster/messages.ts';
export { describe as describeError } from './errors.ts';
