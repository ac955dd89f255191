/**
 * Every usage text of the `tether` command, in one place: the overview (`tether help`) and one
 * text per subcommand, printed by `tether <command> --help` (or `-h`, or `tether help <command>`)
 * and after an unknown option. A new command adds its name to `Command` and its text below.
 */

export type Command =
  | 'start' | 'validate' | 'explain' | 'plugins'
  | 'table' | 'table show' | 'table set' | 'table delete' | 'table clear'
  | 'backend' | 'backend list' | 'backend set'
  | 'reload' | 'status'
  | 'bench' | 'bench strategies';

/** The options that load a configuration (start, validate, explain, plugins). */
const CONFIG_OPTIONS = `Configuration options (they override the file and TETHER_* variables):
  -c, --config FILE          JSON or YAML configuration file
  --listen HOST:PORT         MQTT listener                       (default 127.0.0.1:1883)
  --backend [NAME=]HOST:PORT a broker; repeat for each            (default: embedded brokers)
  --send-proxy v1|v2|none    PROXY protocol towards the --backend brokers
  --backend-dns NAME:PORT    every address of NAME (A records) on PORT, re-resolved every 10s; repeatable
  --backend-srv NAME         the SRV records of NAME (_mqtt._tcp.example): targets, ports, weights; repeatable
  --backend-file FILE        the backends listed in a YAML/JSON file, watched; repeatable
  --resolver HOST:PORT       DNS server for --backend-dns/--backend-srv instead of the system's; repeatable
  --admin HOST:PORT          admin HTTP API (and GET /metrics), loopback unless a token is set (default off)
  --metrics-listen HOST:PORT read-only listener for GET /metrics only (Prometheus) (default off)
  --key a,b                  key extractor chain                  (default client-id)
  --select a,b               strategy chain                       (default stick-table,least-connections)
  --redis URL                the stick table on Redis, shared by every instance: redis://[user:pass@]host:port/db
                             or rediss://… (password also from TETHER_REDIS_PASSWORD); docs/scale-out.md
  --sinks a,b                sink chain                           (default proxy-protocol)
  --plugin PATH|PACKAGE      load a plugin module; repeatable
  --retries N                other backends to try when a connect fails (default 1)
  --health-check none|tcp|mqtt  check every backend (default none)
  --sniff-timeout DURATION   time to send a complete CONNECT      (default 5s)
  --sniff-max-bytes N        largest CONNECT accepted             (default 65536)
  --log-level LEVEL          fatal|error|warn|info|debug|trace|silent (default info)
  --workers N|auto           worker processes sharing the listener and the stick table (default 1)
  --tls-listen HOST:PORT     a TLS (mqtts) listener named "tls", beside --listen; replaces listeners
  --tls-cert FILE            its certificate (PEM; leaf, then intermediates)
  --tls-key FILE             its private key (PEM)
  --tls-ca FILE              CA bundle for client certificates (mutual TLS)
  --tls-verify none|optional|required  client certificates (default: required with --tls-ca, else none)
  --ws-listen HOST:PORT      MQTT over WebSocket (ws://HOST:PORT/mqtt), listener "ws"; replaces listeners
  --wss-listen HOST:PORT     the same over TLS (wss://), listener "wss", with --tls-cert/--tls-key
  -h, --help                 this text

The admin token (admin.token, admin.tokenFile) is set in the file or with TETHER_ADMIN_TOKEN /
TETHER_ADMIN_TOKEN_FILE, never on the command line. Every option: docs/configuration.md
`;

/** How the commands that talk to a running balancer find its admin API and token. */
const ADMIN_OPTIONS = `Reaching the running balancer:
  --admin HOST:PORT|URL      its admin API (default: admin.listen of -c FILE, or TETHER_ADMIN)
  -c, --config FILE          its configuration file: the admin address and token from there
  --token-file FILE          the admin token, on the file's first line (else TETHER_ADMIN_TOKEN,
                             else the token of -c FILE)
  --json                     print the API's answer as JSON
  -h, --help                 this text
`;

const TABLE_SUBCOMMANDS = `  table show                 print the table (HAProxy: show table)
  table set KEY BACKEND      send KEY to BACKEND from its next connection on (HAProxy: set table)
  table delete KEY           forget KEY; its next connection is placed afresh
  table clear [--backend NAME]  forget every entry, or those on NAME (HAProxy: clear table)`;

const BACKEND_SUBCOMMANDS = `  backend list                          the backends, their state, weight and load
  backend set NAME ready|drain|maint    change a backend's state (HAProxy: set server … state)
  backend set NAME weight N             change its weight, 1 to 256 (HAProxy: set server … weight)`;

export const USAGE = `Usage: tether <command> [options]

Commands:
  start              run the balancer (with no backends: two embedded brokers)
  validate -c FILE   check a configuration file and print the result
  explain --hex HEX  show what Tether would do with one first packet (CONNECT, or a WebSocket opening)
${TABLE_SUBCOMMANDS}
${BACKEND_SUBCOMMANDS}
  plugins            list the plugins found, their kind, version and options
  reload             a running balancer reads its configuration again and applies it (as SIGHUP)
  status             which configuration a running balancer runs: generation, since when, which file
  bench strategies -s FILE   compare strategy chains on a simulated scenario (no sockets)
  bench network      measure the data path on loopback against direct and HAProxy baselines
  help [COMMAND]     this text, or a command's

Every command takes -h or --help: tether start --help, tether table set --help, ...
Options, defaults and environment variables: docs/configuration.md
`;

const TABLE_HEAD = `The stick table of a running balancer, over its admin API. With several workers every worker's
copy is changed. Keys are client ids (or user names): quote them for the shell, and put -- before
one that starts with a dash.`;

const BACKEND_HEAD = `The backends of a running balancer, over its admin API. A state or weight set here holds on
every worker (and on a worker started later) until changed again, or until a reload that sets it.`;

export const COMMAND_USAGE: Readonly<Record<Command, string>> = {
  start: `Usage: tether start [options]

Runs the balancer until SIGINT or SIGTERM. With no backends it starts two embedded aedes brokers
on loopback. With --workers N the process becomes a primary that runs N workers on the same
listeners and serves the admin API for all of them. SIGHUP reloads the configuration in place
(as tether reload): no connection is dropped.

  --watch                    reload when the -c FILE changes

${CONFIG_OPTIONS}`,

  reload: `Usage: tether reload [options]

A running balancer reads its configuration again (the same file, TETHER_* variables and flags it
was started with) and applies it in place, as SIGHUP does: spliced connections go on untouched.
Prints what changed; when the configuration is refused, prints every error and exits 1 (the
balancer keeps running the configuration it had). With --workers, each worker's result.

${ADMIN_OPTIONS}`,

  status: `Usage: tether status [options]

Which configuration a running balancer runs: its generation, when and from which file it was
loaded, the last reload that failed (if any), and with --workers each worker's generation.

${ADMIN_OPTIONS}`,

  validate: `Usage: tether validate [-c FILE] [options]

Checks a configuration (the file, TETHER_* variables and flags together), loads every plugin and
checks its options, without opening a port. Prints a summary (each chain entry with its \`when\`
condition) and exits 0, or every error and exits 1.

${CONFIG_OPTIONS}`,

  explain: `Usage: tether explain --hex HEX [--json] [options]

Parses one first packet (the CONNECT a client sends, as hex) and shows its fields, the key and the
backend the strategy chain would choose. The bytes of a WebSocket opening (the Upgrade request and
the frames after it, as a browser sends them to a WebSocket listener) are read the same way, with
the first WebSocket listener's path and subprotocols. Computed here from the configuration, or with
--admin by a running balancer against its live table. Exit 0 for a valid CONNECT, 1 otherwise.

  --hex HEX                  the packet or the opening, as hexadecimal
  --json                     print the result as JSON
  --token-file FILE          the admin token, with --admin (else TETHER_ADMIN_TOKEN)

${CONFIG_OPTIONS}`,

  plugins: `Usage: tether plugins [--json] [options]

Lists the plugins found, built-in and loaded with --plugin or the file's \`plugins\`: their kind,
version, source and options.

  --json                     print them as JSON

${CONFIG_OPTIONS}`,

  table: `Usage: tether table <show|set|delete|clear> [options]

${TABLE_HEAD}

${TABLE_SUBCOMMANDS}

${ADMIN_OPTIONS}`,

  'table show': `Usage: tether table show [--limit N] [--cursor C | --all] [--key KEY] [options]

Prints a running balancer's tables like HAProxy's \`show table\`: one line per entry with its key,
live connections (use), milliseconds left before it expires once idle (exp), backend and hits. A
table in a shared store (Redis) is read in pages and says which store it reads.

  --limit N                  list at most N entries of each table (a page)
  --cursor C                 the page that starts where the previous one ended (it prints C)
  --all                      every page, from the first
  --key KEY                  only this key

${ADMIN_OPTIONS}`,

  'table set': `Usage: tether table set KEY BACKEND [options]

Points KEY at BACKEND in every table of the strategy chain (HAProxy: set table … key KEY data
server_key BACKEND): the client's next connection goes to BACKEND, as if it had been learned.
Live connections stay where they are. A backend that is not ready is passed over as usual.

${ADMIN_OPTIONS}`,

  'table delete': `Usage: tether table delete KEY [options]

Forgets KEY in every table: the client's next connection is placed by the rest of the chain.
Exit 1 if no table has it.

${ADMIN_OPTIONS}`,

  'table clear': `Usage: tether table clear [--backend NAME] [options]

Forgets every entry (HAProxy: clear table), or with --backend only those on NAME: for instance
after a broker lost its sessions. Live connections stay where they are.

  --backend NAME             only the entries on this backend

${ADMIN_OPTIONS}`,

  backend: `Usage: tether backend <list|set> [options]

${BACKEND_HEAD}

${BACKEND_SUBCOMMANDS}

${ADMIN_OPTIONS}`,

  'backend list': `Usage: tether backend list [options]

One line per backend: address, effective state, the operator's state, health, weight, live
connections (summed over the workers) and source: static (the configuration's backends) or the
provider that discovered it (dns NAME:PORT, dns SRV NAME, file PATH).

${ADMIN_OPTIONS}`,

  'backend set': `Usage: tether backend set NAME ready|drain|maint [options]
       tether backend set NAME state ready|drain|maint [options]
       tether backend set NAME weight N [options]

${BACKEND_HEAD}
  ready                      takes new connections
  drain                      keeps its live connections, takes no new one (sticky keys go elsewhere)
  maint                      the same, for maintenance
  weight N                   1 to 256: its share relative to the others' weights (least-connections
                             divides live connections by it; round-robin and the hashes follow it)

${ADMIN_OPTIONS}`,

  bench: `Usage: tether bench <strategies|network> [options]

  bench strategies -s FILE   compare strategy chains on a simulated, seeded scenario (no sockets)
  bench network              measure the data path on loopback against direct and HAProxy baselines

tether bench strategies --help and tether bench network --help list their options.

  -h, --help                 this text
`,

  'bench strategies': `Usage: tether bench strategies -s SCENARIO [options]

Drives the real strategy plugins through a simulated scenario (no sockets) and compares the chains:
stickiness, sessions moved per event against the minimum, balance over time, selection cost and
memory per remembered client. Scenarios: examples/bench/*.yaml.

  -s, --scenario FILE   scenario file (YAML or JSON)
  --chain a,b           a strategy chain to compare; repeat for each (overrides the scenario's).
                        name@persistent / name@clean sets a condition; a JSON list gives options:
                        --chain '[{"use":"stick-table","options":{"expire":"10m"}},"least-connections"]'
  --clients N           number of clients (overrides the scenario)
  --seed N              random seed (overrides the scenario); same seed, same results
  --plugin PATH|PACKAGE load a plugin module (third-party strategies); repeatable
  --json                print the full result as JSON
  --report FILE.html    also write a self-contained HTML report with charts
  -h, --help            this text

Memory per client is measured only when the GC is exposed: NODE_OPTIONS=--expose-gc tether bench ...
`,
};

/**
 * `tether bench network --help`: its defaults come from @tether/bench, which is loaded only for
 * `tether bench` (never by `start` and its workers), so they are passed in.
 */
export interface BenchNetworkDefaults {
  readonly backendCount: number;
  readonly rounds: number;
  readonly scenarios: readonly string[];
  readonly connections: number;
  readonly idleConnections: number;
  readonly idleLimit: number;
  readonly concurrency: number;
  readonly durationS: number;
  readonly baselines: readonly string[];
}

export function benchNetworkUsage(d: BenchNetworkDefaults): string {
  return `Usage: tether bench network [options]

Starts the balancer in its own process and drives real MQTT traffic at it over loopback from a
load generator process, next to the same traffic sent straight to the brokers (direct) and through
HAProxy with the seed's equivalent configuration. Targets run interleaved, round by round; results
are medians over rounds with min-max, and ratios to the baselines.

Scenarios: connect (connect storm: TCP connect + CONNECT + CONNACK + DISCONNECT), reconnect
(persistent clients reconnect once each; stickiness from CONNACK's session-present flag), idle
(hold K connections: balancer RSS per connection), pingpong (PINGREQ/PINGRESP round trips),
publish (QoS 0 and QoS 1 messages/s); by name only, ws-connect and ws-pingpong (the same storm and
round trips over WebSocket through Tether's WebSocket listener, bridged; with --backend embedded
also a tether:ws-pass target passing through to the brokers' own WebSocket endpoints; no baseline
has a WebSocket side).
Every phase also reports the balancer's CPU time per operation.

  -c, --config FILE      a Tether configuration to measure; repeat to measure several in turn
                         (its backends and listener are replaced by the benchmark's)
  --backend KIND         responder (default: a minimal built-in MQTT responder, so that the
                         balancer is what is measured), embedded (independent aedes brokers), or
                         HOST:PORT of a running broker on this machine (repeat for each)
  --backend-count N      backends for responder and embedded    (default ${d.backendCount})
  --rounds N             rounds                                  (default ${d.rounds})
  --scenarios a,b        among ${d.scenarios.join(',')}
                         (default all but the ws- ones)
  --connections N        clients of the connect and reconnect storms (default ${d.connections})
  --clients K            connections of the idle hold, at most ${d.idleLimit.toLocaleString('en-US')} (default ${d.idleConnections})
  --concurrency C        clients at a time in the storms; connections of ping-pong and publish
                         (default ${d.concurrency})
  --duration S           seconds of each ping-pong and publish phase (default ${d.durationS}; 500ms also works)
  --workers 1,2          run each Tether target with these worker counts, side by side (targets
                         tether, tether:2w, ...); CPU and RSS are summed over the primary and
                         its workers (default 1)
  --metrics on,off       run each Tether target with metrics on, off, or both side by side
                         (targets tether and tether:nometrics; default on): what metrics and
                         the CONNACK check cost, from one interleaved run
  --log-level LEVEL      the Tether targets' log level (default warn: no line per connection;
                         info adds the "connection closed" line of every connection)
  --redis                also run every Tether target with its stick table on a Redis started for
                         the run (redis-server on loopback; targets tether:redis, ...), interleaved
                         with the memory store; reports connections/s (every key new: one claim
                         each), reconnects/s (keys cached) and added p99 against the memory store
  --baseline a,b         ${d.baselines.join(',')} or none   (default: direct, and haproxy if installed);
                         node is a minimal Node.js proxy (accept, connect, forward; no parsing,
                         no state): what any balancer built on Node's net module costs at least
  --json                 print the full result as JSON
  --report FILE.html     also write a self-contained HTML page (inline SVG, no script, opens
                         offline): latency percentiles per target with min-max over rounds,
                         session present on reconnect, ratios to the baselines, the tables
  -h, --help             this text

Only loopback addresses are accepted. Every process the benchmark starts is stopped by its PID
when it ends or is interrupted.
`;
}
