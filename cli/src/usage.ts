export const USAGE = `Usage: tether <command> [options]

Commands:
  start              run the balancer (with no backends: two embedded brokers)
  validate -c FILE   check a configuration file and print the result
  explain --hex HEX  show what Tether would do with one first packet (CONNECT)
  table show         print the live stick table of a running balancer
  backend list       the backends of a running balancer, their state and load
  backend set NAME ready|drain|maint   change a backend's state on a running balancer
  plugins            list the plugins found, their kind, version and options
  bench strategies -s FILE   compare strategy chains on a simulated scenario (no sockets)
  bench network      measure the data path on loopback against direct and HAProxy baselines
  help               this text

Configuration options (start, validate, explain, plugins); they override the file and TETHER_* variables:
  -c, --config FILE          JSON or YAML configuration file
  --listen HOST:PORT         MQTT listener                       (default 127.0.0.1:1883)
  --backend [NAME=]HOST:PORT a broker; repeat for each            (default: embedded brokers)
  --send-proxy v1|v2|none    PROXY protocol towards the --backend brokers
  --admin HOST:PORT          admin HTTP API on loopback          (default off)
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

explain:    --hex HEX [--json] [--admin HOST:PORT to ask a running balancer]
table show: [--admin HOST:PORT | -c FILE] [--json] [--limit N] [--cursor C | --all] [--key KEY]
backend:    [--admin HOST:PORT | -c FILE] [--json]
bench strategies: -s FILE [--chain a,b ...] [--clients N] [--seed N] [--json] [--report FILE.html] [--plugin PATH]

Every option, its default and its environment variable: docs/configuration.md
`;
